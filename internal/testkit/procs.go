package testkit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/time/rate"
)

// ModuleRoot is the directory of the module's go.mod, found from the
// test's working directory (its package directory).
func ModuleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		d = up
	}
}

type binaries struct{ get, serve string }

var bins Once[binaries]

// Binaries builds pkgtorrent-get (with pkgtorrent-agent beside it, where it
// finds its agent) and pkgtorrent-service once per test binary, with -race
// when the test binary has it, and returns their paths.
func Binaries(t testing.TB) (get, serve string) {
	t.Helper()
	b := bins.Get(t, func() (binaries, error) {
		root, err := ModuleRoot()
		if err != nil {
			return binaries{}, err
		}
		dir, err := SharedDir("pkgtorrent-bin-")
		if err != nil {
			return binaries{}, err
		}
		args := []string{"build", "-o", dir + "/"}
		if Race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/pkgtorrent-get", "./cmd/pkgtorrent-agent", "./cmd/pkgtorrent-service")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return binaries{}, fmt.Errorf("go build: %v\n%s", err, out)
		}
		return binaries{filepath.Join(dir, "pkgtorrent-get"), filepath.Join(dir, "pkgtorrent-service")}, nil
	})
	return b.get, b.serve
}

// StartService runs the built pkgtorrent-service over root on a free port
// of 127.0.0.1 (no config file, args added) until the test ends, and
// returns its URL.
func StartService(t testing.TB, root string, args ...string) string {
	t.Helper()
	_, serve := Binaries(t)
	return StartServiceBin(t, serve, root, args...)
}

// StartServiceBin is StartService with the pkgtorrent-service binary bin
// (an installed one).
func StartServiceBin(t testing.TB, bin, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--root", root, "--listen", "127.0.0.1:0", "--config", os.DevNull}, args...)...)
	cmd.Env = CleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("service stderr:\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("service did not start: %v\n%s", err, stderr.String())
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "pkgtorrent-service listening on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	return u
}

// DeadURL is the URL of a port of 127.0.0.1 nothing listens on.
func DeadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String() + "/"
}

// HangingURL is the URL of a server that accepts connections and reads
// requests but never answers, until the test ends.
func HangingURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				b := make([]byte, 4096)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String() + "/"
}

// Request is one request a Mirror served: a whole file (Range "") is the
// package manager's own download or pkgtorrent-get's plain HTTP fallback,
// a range an agent's webseed request.
type Request struct {
	Agent, Path, Range string
	Bytes              int64
}

// Mirror is a plain HTTP mirror of a tree (no pkgtorrent API) that logs
// every request with its user agent, optionally rate-limited.
type Mirror struct {
	URL string
	mu  sync.Mutex
	log []Request
}

// StartMirror serves root until the test ends; bytesPerSec > 0 limits the
// bytes it sends.
func StartMirror(t testing.TB, root string, bytesPerSec int) *Mirror {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &Mirror{URL: "http://" + ln.Addr().String() + "/"}
	var lim *rate.Limiter
	if bytesPerSec > 0 {
		lim = rate.NewLimiter(rate.Limit(bytesPerSec), 64<<10)
	}
	files := http.FileServer(http.Dir(root))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w, ctx: r.Context(), lim: lim}
		files.ServeHTTP(cw, r)
		m.mu.Lock()
		m.log = append(m.log, Request{Agent: r.UserAgent(), Path: r.URL.Path, Range: r.Header.Get("Range"), Bytes: cw.n})
		m.mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return m
}

// Requests returns the requests whose path ends in suffix and whose user
// agent contains agent ("" for any).
func (m *Mirror) Requests(suffix, agent string) []Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Request
	for _, r := range m.log {
		if strings.HasSuffix(r.Path, suffix) && strings.Contains(r.Agent, agent) {
			out = append(out, r)
		}
	}
	return out
}

// Bytes is the body bytes the mirror sent.
func (m *Mirror) Bytes() (n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.log {
		n += r.Bytes
	}
	return n
}

func (m *Mirror) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, r := range m.log {
		fmt.Fprintf(&b, "%s %q %q %d\n", r.Path, r.Agent, r.Range, r.Bytes)
	}
	return b.String()
}

type countingWriter struct {
	http.ResponseWriter
	ctx context.Context
	lim *rate.Limiter
	n   int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := min(len(p), 64<<10)
		if w.lim != nil {
			if err := w.lim.WaitN(w.ctx, c); err != nil {
				return written, err
			}
		}
		n, err := w.ResponseWriter.Write(p[:c])
		written += n
		w.n += int64(n)
		if err != nil {
			return written, err
		}
		p = p[c:]
	}
	return written, nil
}
