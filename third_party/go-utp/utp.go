// Package utp is a local stand-in for github.com/anacrolix/go-utp, which the
// Go module registry available to this project does not serve.
//
// anacrolix/torrent v1.62.0 imports it for uTP sockets. pkgtorrent runs its
// clients with DisableUTP (TCP only), so every constructor here fails and no
// socket is ever created. The types match what anacrolix/torrent calls.
package utp

import (
	"context"
	"errors"
	"log/slog"
	"net"
)

// ErrUnavailable is returned by every constructor: uTP is not built in.
var ErrUnavailable = errors.New("uTP is not available in this build (TCP only)")

// Default names the implementation in error messages.
const Default = "go-utp stand-in"

// FirewallCallback decides whether an incoming connection is blocked.
type FirewallCallback func(net.Addr) bool

// Socket is the uTP socket interface anacrolix/torrent expects.
type Socket interface {
	net.PacketConn
	Accept() (net.Conn, error)
	Addr() net.Addr
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	SetFirewallCallback(FirewallCallback)
}

// Option configures a socket.
type Option func(*options)

type options struct{ logger *slog.Logger }

// WithLogger sets the socket's logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// NewSocket always fails: uTP is not available.
func NewSocket(network, addr string, opts ...Option) (Socket, error) {
	return nil, ErrUnavailable
}

// NewSocketFromPacketConn always fails: uTP is not available.
func NewSocketFromPacketConn(pc net.PacketConn, opts ...Option) (Socket, error) {
	return nil, ErrUnavailable
}
