// Package control is the agent's control protocol and its client side: the
// request and reply lines of the agent's unix socket, dialing an agent, and
// starting one (as the unprivileged agent user when the caller is root) when
// none runs. It does not hold the BitTorrent engine: the commands that only
// talk to an agent import this package, not package agent.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// SocketName is the agent's socket inside its state directory.
const SocketName = "agent.sock"

// LogName is the agent's log file inside its state directory.
const LogName = "agent.log"

// SocketPath returns the socket of the agent for stateDir.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, SocketName) }

// MaxRequest bounds the size of one request line in bytes.
const MaxRequest = 32 << 20

// Request is one line a client sends to the agent.
type Request struct {
	// Op is "fetch", "status", "metrics" or "stop".
	Op string `json:"op"`
	// Torrent is the batch .torrent (fetch).
	Torrent []byte `json:"torrent,omitempty"`
	// Mirrors are extra mirror base URLs the client knows (fetch).
	Mirrors []string `json:"mirrors,omitempty"`
}

// Progress is the state of a fetch, as counted since the fetch started.
type Progress struct {
	// Total is the payload size of the batch in bytes (padding excluded).
	Total int64 `json:"total"`
	// Completed is the payload bytes received so far: the torrent's
	// received bytes scaled to the payload (padding is a few percent,
	// spread evenly); exact at the start and when complete.
	Completed int64 `json:"completed"`
	// FromPeers and FromWebseed are useful bytes received by this fetch.
	FromPeers   int64 `json:"from_peers"`
	FromWebseed int64 `json:"from_webseed"`
	// Peers is the number of connected peers.
	Peers int `json:"peers"`
	// Webseed tells whether the webseeds were in use.
	Webseed bool `json:"webseed"`
}

// Status is the agent's report of itself; byte counts are payload bytes
// since the agent started.
type Status struct {
	PID      int `json:"pid"`
	PeerPort int `json:"peer_port"`
	// Torrents held, Seeding of them complete; Peers connected over all.
	Torrents int `json:"torrents"`
	Seeding  int `json:"seeding"`
	Peers    int `json:"peers"`
	// Uploaded to peers; Downloaded is FromPeers + FromWeb.
	Uploaded   int64 `json:"uploaded"`
	Downloaded int64 `json:"downloaded"`
	FromPeers  int64 `json:"from_peers"`
	FromWeb    int64 `json:"from_webseed"`
	// P2PShare is FromPeers / Downloaded (0 before any download).
	P2PShare float64 `json:"p2p_share"`
	Uptime   float64 `json:"uptime_seconds"`
	// MetricsURL is where the agent serves Prometheus metrics ("" if not).
	MetricsURL string `json:"metrics_url,omitempty"`
}

// Reply is one line the agent sends back.
type Reply struct {
	// Type is "progress", "files" (progress, and files complete since the
	// last report), "done", "status", "metrics" or "error". A client that
	// knows no "files" takes it for progress: "done" names every file.
	Type     string   `json:"type"`
	Progress Progress `json:"progress"`
	// Files maps torrent file paths to the agent's verified data files:
	// the files completed since the last report (files), every file (done).
	Files  map[string]string `json:"files,omitempty"`
	Status *Status           `json:"status,omitempty"`
	// Metrics is the agent's metrics in the Prometheus text format (metrics).
	Metrics string `json:"metrics,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Conn is a client connection to an agent.
type Conn struct {
	c   net.Conn
	dec *json.Decoder
}

// Dial connects to the agent of stateDir.
func Dial(ctx context.Context, stateDir string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", SocketPath(stateDir))
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, dec: json.NewDecoder(bufio.NewReader(c))}, nil
}

// Send sends a request.
func (c *Conn) Send(r Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(b) >= MaxRequest {
		return fmt.Errorf("request of %d bytes is over the agent's limit of %d", len(b), MaxRequest)
	}
	_, err = c.c.Write(append(b, '\n'))
	return err
}

// Recv reads the next reply, waiting at most until deadline (zero: forever).
func (c *Conn) Recv(deadline time.Time) (Reply, error) {
	var r Reply
	c.c.SetReadDeadline(deadline)
	if err := c.dec.Decode(&r); err != nil {
		return r, fmt.Errorf("reading from agent: %w", err)
	}
	if r.Type == "error" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// Close closes the connection; an unfinished fetch is abandoned.
func (c *Conn) Close() error { return c.c.Close() }
