// Package testkit is what the project's tests share: the binaries built
// once per test binary (race-built when the test binary is), a clean
// environment, a pkgtorrent-service and plain mirrors on 127.0.0.1, hosts
// (a state directory, its agent, pkgtorrent-get runs), the rule for a
// missing tool, polling with a deadline, and random data. Only tests import
// it (the benchmark, core/bench, keeps its own process helpers: it is a
// product, pkgtorrent-bench).
//
// Missing tools: a test that needs a program (dnf, pacman, aria2c, ...) or
// root skips without it, except under CI, which is CI=true exactly (as
// .ci/run and the README say): there .ci/run installs every tool and runs
// as root, so a missing one fails the test.
package testkit

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI: CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test for a missing prerequisite, or fails it under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: .ci/run installs every tool and runs as root)", msg)
	}
	t.Skip(msg)
}

// NeedTool returns the path of each program named (the first one's when
// several), skipping the test without one (failing it under CI).
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	var first string
	for i, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			Missing(t, "%s is not installed (its Debian package goes in .ci/run)", name)
		}
		if i == 0 {
			first = p
		}
	}
	return first
}

// NeedRoot skips the test when not run as root (fails it under CI); why
// says what needs root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "%s needs root", why)
	}
}

// CleanEnv is the test process's environment without PKGTORRENT_
// variables, for the processes the tests start.
func CleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PKGTORRENT_") {
			env = append(env, e)
		}
	}
	return env
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Poll polls cond every 10 ms until it holds or timeout passes, and
// reports whether it held (for a test that checks what it got itself).
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// RandBytes returns n pseudo-random bytes, the same for the same seed.
func RandBytes[N int | int64](n N, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var shared struct {
	mu   sync.Mutex
	dirs []string
}

// SharedDir makes a directory for the whole test binary (built binaries,
// packages, repositories), reachable by the unprivileged agent user;
// Main removes it.
func SharedDir(prefix string) (string, error) {
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	// Started by root, the agent runs as an unprivileged user: it must be
	// able to run the binaries and read the files here.
	os.Chmod(d, 0o755)
	shared.mu.Lock()
	shared.dirs = append(shared.dirs, d)
	shared.mu.Unlock()
	return d, nil
}

// Main runs the tests and removes the shared directories: a package's
// TestMain is func TestMain(m *testing.M) { testkit.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	for _, d := range shared.dirs {
		os.RemoveAll(d)
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Once is a value computed once per test binary; its error fails every
// test that asks for it.
type Once[T any] struct {
	once sync.Once
	v    T
	err  error
}

// Get computes the value on the first call.
func (o *Once[T]) Get(t testing.TB, f func() (T, error)) T {
	t.Helper()
	o.once.Do(func() { o.v, o.err = f() })
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.v
}

// LocalServer is an httptest server serving h on 127.0.0.1, closed at the
// end of the test.
func LocalServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// SparseFile creates the file p (and its directory) with size bytes that
// take no disk space.
func SparseFile(t testing.TB, p string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// Do sends req with c (nil: http.DefaultClient) and returns the response
// with its whole body read (and closed); a transport error fails the test.
func Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// Get is Do with a GET of u.
func Get(t testing.TB, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Do(t, c, req)
}
