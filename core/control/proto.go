// Package control is the agent's control protocol and its client side: the
// request and reply lines of the agent's unix socket, dialing an agent, and
// starting one (as the unprivileged agent user when the caller is root) when
// none runs. It does not hold the BitTorrent engine: the commands that only
// talk to an agent import this package, not package agent.
package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
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
	// Op is "fetch", "import", "status", "metrics" or "stop".
	Op string `json:"op"`
	// Torrent is the batch .torrent (fetch).
	Torrent []byte `json:"torrent,omitempty"`
	// Mirrors are extra mirror base URLs the client knows (fetch).
	Mirrors []string `json:"mirrors,omitempty"`
	// Direct says the client can download the files from the mirror
	// itself (fetch): when no peer has the batch, the agent replies
	// "direct" instead of downloading it.
	Direct bool `json:"direct,omitempty"`
	// Paths are the torrent's files whose verified content comes with the
	// request, one open file each, in order (import; see SendFiles).
	Paths []string `json:"paths,omitempty"`
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
	// last report), "done", "direct", "status", "metrics" or "error". A
	// client that knows no "files" takes it for progress: "done" names
	// every file. "direct" answers a fetch that offered Direct: no peer
	// has the batch; the client downloads the files the agent does not
	// hold (Files names those it holds) from the mirror, places them, and
	// sends each one's content on the same connection ("import" requests,
	// SendFiles) for the agent to seed. "swarm" tells such a client that
	// peers have arrived: it starts no more downloads, and leaves the files
	// it has not got to the agent with a "fetch" request on the same
	// connection (no torrent), which the agent answers as any fetch.
	Type     string   `json:"type"`
	Progress Progress `json:"progress"`
	// Files maps torrent file paths to the agent's verified data files:
	// the files completed since the last report (files), every file (done).
	Files map[string]string `json:"files,omitempty"`
	// Offsets gives, for the files of Files whose content does not start
	// at the beginning of their data file (a pack holds many), where it
	// starts; the content is the file's length from there.
	Offsets map[string]int64 `json:"offsets,omitempty"`
	Status  *Status          `json:"status,omitempty"`
	// Metrics is the agent's metrics in the Prometheus text format (metrics).
	Metrics string `json:"metrics,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Conn is a client connection to an agent.
type Conn struct {
	c   net.Conn
	dec *json.Decoder
}

// MaxImportFiles is the most files one import request carries (the kernel
// passes at most 253 descriptors in one message).
const MaxImportFiles = 64

// SendFiles sends an import request: the torrent's files named by paths
// (at most MaxImportFiles), each with its content as an open file, passed
// to the agent with the request (SCM_RIGHTS). The caller still closes its
// files.
func (c *Conn) SendFiles(paths []string, files []*os.File) error {
	if len(paths) != len(files) || len(paths) == 0 || len(paths) > MaxImportFiles {
		return fmt.Errorf("import of %d paths with %d files", len(paths), len(files))
	}
	uc, ok := c.c.(*net.UnixConn)
	if !ok {
		return errors.New("import needs a unix socket")
	}
	b, err := json.Marshal(Request{Op: "import", Paths: paths})
	if err != nil {
		return err
	}
	n, oobn, err := uc.WriteMsgUnix(append(b, '\n'), Rights(files), nil)
	if err != nil {
		return fmt.Errorf("sending files to agent: %w", err)
	}
	if n != len(b)+1 || oobn == 0 {
		return errors.New("sending files to agent: short write")
	}
	return nil
}

// Rights is the control message passing files' descriptors (SCM_RIGHTS);
// nil for none.
func Rights(files []*os.File) []byte {
	if len(files) == 0 {
		return nil
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return syscall.UnixRights(fds...)
}

// FileReceiver reads import requests and the files that come with them
// from a client connection (the agent's side of SendFiles).
type FileReceiver struct {
	c    *net.UnixConn
	buf  []byte // bytes read past the last request line
	fds  []int  // descriptors received, not yet handed out
	data []byte
	oob  []byte
}

// NewFileReceiver reads from c, whose earlier reads must have consumed
// nothing past the request they returned.
func NewFileReceiver(c *net.UnixConn) *FileReceiver {
	return &FileReceiver{c: c, data: make([]byte, 64<<10), oob: make([]byte, syscall.CmsgSpace(4*MaxImportFiles*4))}
}

// Next returns the next import request and its files (io.EOF when the
// client hung up), or a "fetch" request (no files): the client leaves the
// rest of the batch to the agent. A request without its files, or any
// other request, is an error; the files returned are the caller's to close.
func (r *FileReceiver) Next() (Request, []*os.File, error) {
	for {
		if i := bytes.IndexByte(r.buf, '\n'); i >= 0 {
			line := r.buf[:i]
			r.buf = r.buf[i+1:]
			var req Request
			if err := json.Unmarshal(line, &req); err != nil {
				r.closeAll()
				return req, nil, fmt.Errorf("bad import request: %w", err)
			}
			if req.Op == "fetch" && len(req.Paths) == 0 {
				return req, nil, nil
			}
			if req.Op != "import" || len(req.Paths) == 0 || len(req.Paths) > MaxImportFiles || len(req.Paths) > len(r.fds) {
				r.closeAll()
				return req, nil, fmt.Errorf("bad import request: op %q with %d paths and %d files", req.Op, len(req.Paths), len(r.fds))
			}
			files := make([]*os.File, len(req.Paths))
			for j := range files {
				files[j] = os.NewFile(uintptr(r.fds[j]), req.Paths[j])
			}
			r.fds = r.fds[len(files):]
			return req, files, nil
		}
		if len(r.buf) > MaxRequest {
			r.closeAll()
			return Request{}, nil, errors.New("bad import request: line too long")
		}
		n, oobn, flags, _, err := r.c.ReadMsgUnix(r.data, r.oob)
		if oobn > 0 {
			msgs, perr := syscall.ParseSocketControlMessage(r.oob[:oobn])
			for _, m := range msgs {
				if fds, err := syscall.ParseUnixRights(&m); err == nil {
					for _, fd := range fds {
						syscall.CloseOnExec(fd)
					}
					r.fds = append(r.fds, fds...)
				}
			}
			if perr != nil {
				err = errors.Join(err, perr)
			}
		}
		if flags&syscall.MSG_CTRUNC != 0 {
			r.closeAll()
			return Request{}, nil, errors.New("bad import request: too many files in one message")
		}
		// Each request's files come with it (a read ends at a message with
		// files): at most the files of a line read in part and of the next
		// one are waiting. More are files no request names, which would
		// pile up, open, in the agent.
		if len(r.fds) > 2*MaxImportFiles {
			r.closeAll()
			return Request{}, nil, errors.New("bad import request: files no request names")
		}
		r.buf = append(r.buf, r.data[:n]...)
		if err != nil {
			r.closeAll()
			if n == 0 && errors.Is(err, io.EOF) {
				return Request{}, nil, io.EOF
			}
			return Request{}, nil, err
		}
		if n == 0 {
			r.closeAll()
			return Request{}, nil, io.EOF
		}
	}
}

// Close closes the descriptors received but not handed out.
func (r *FileReceiver) Close() { r.closeAll() }

func (r *FileReceiver) closeAll() {
	for _, fd := range r.fds {
		syscall.Close(fd)
	}
	r.fds = nil
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
