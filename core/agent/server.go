package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/control"
)

// requestTimeout bounds the time a client takes to send its request.
const requestTimeout = 30 * time.Second

func (a *Agent) handle(c net.Conn) {
	defer c.Close()
	trusted := a.trusted(c)
	enc := json.NewEncoder(c)
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := readLine(r, control.MaxRequest)
	if err != nil {
		enc.Encode(control.Reply{Type: "error", Error: "bad request: " + err.Error()})
		return
	}
	c.SetReadDeadline(time.Time{})
	var req control.Request
	if err := json.Unmarshal(line, &req); err != nil {
		enc.Encode(control.Reply{Type: "error", Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case "stop":
		if !trusted {
			enc.Encode(control.Reply{Type: "error", Error: "only root and the agent's user may stop the agent"})
			return
		}
		enc.Encode(control.Reply{Type: "done"})
		a.shutdown("stop requested")
	case "status":
		a.awaitImports(statusImportWait)
		s := a.status()
		enc.Encode(control.Reply{Type: "status", Status: &s})
	case "metrics":
		text, err := a.metricsText()
		if err != nil {
			enc.Encode(control.Reply{Type: "error", Error: err.Error()})
			return
		}
		enc.Encode(control.Reply{Type: "metrics", Metrics: text})
	case "fetch":
		ctx, cancel := context.WithCancel(context.Background())
		err := a.fetch(ctx, req, trusted, client{
			send: func(rep control.Reply) error { return enc.Encode(rep) },
			// The client closing its end cancels the fetch.
			watch: func() {
				go func() {
					io.Copy(io.Discard, r)
					cancel()
				}()
			},
			files: func() (*control.FileReceiver, error) {
				uc, ok := c.(*net.UnixConn)
				if !ok || r.Buffered() > 0 {
					return nil, errors.New("the client sent more than its request")
				}
				return control.NewFileReceiver(uc), nil
			},
		})
		cancel()
		if err != nil {
			enc.Encode(control.Reply{Type: "error", Error: err.Error()})
		}
	default:
		enc.Encode(control.Reply{Type: "error", Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
}

// readLine reads one newline-terminated line of at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, fmt.Errorf("request longer than %d bytes", max)
		}
		line = append(line, frag...)
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// trusted reports whether the client on c is root or the agent's own user
// (SO_PEERCRED): they may stop the agent and name any torrent and mirror;
// anyone else who can reach the socket (the agent's group) gets only what
// the configured service vouches for.
func (a *Agent) trusted(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Geteuid()
}

// statusImportWait bounds how long a status request waits for the files
// of direct fetches to be taken in.
const statusImportWait = 5 * time.Second

// awaitImports waits, at most d, until no file a client of a direct fetch
// has handed over is still to be taken in: a status asked right after a
// fetch (the package manager is done) then counts its bytes, which the
// agent takes in after the client has gone.
func (a *Agent) awaitImports(d time.Duration) {
	deadline := time.Now().Add(d)
	for a.importing.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-a.stopped:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (a *Agent) status() control.Status {
	s := control.Status{PID: os.Getpid(), PeerPort: a.cl.LocalPort(), Uptime: time.Since(a.start).Seconds()}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.entries {
		s.Torrents++
		if e.t.Complete().Bool() {
			s.Seeding++
		}
		st := e.t.Stats()
		s.Peers += st.ActivePeers
		s.Uploaded += st.BytesWrittenData.Int64()
		s.FromPeers += st.PeerConns.BytesReadUsefulData.Int64()
		s.FromWeb += st.WebSeeds.BytesReadUsefulData.Int64()
	}
	// Files of direct fetches came from the mirror too.
	s.FromWeb += a.imported.Load()
	s.Downloaded = s.FromPeers + s.FromWeb
	if s.Downloaded > 0 {
		s.P2PShare = float64(s.FromPeers) / float64(s.Downloaded)
	}
	if a.mln != nil {
		s.MetricsURL = "http://" + a.mln.Addr().String() + "/metrics"
	}
	return s
}
