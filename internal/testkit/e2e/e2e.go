// Package e2e holds what the end-to-end tests share beyond package
// testkit: hosts running pkgtorrent-get (with the client's --json summary,
// fetch.Result) and the service's counters (api.Stats). It is apart from
// testkit because it imports the client and protocol packages, whose own
// tests import testkit.
package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/fetch"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// Host is one client machine: its own state directory, so its own agent.
type Host struct {
	T     testing.TB
	State string
	// Cred, when set, is the user pkgtorrent-get runs as (the test runs as
	// root).
	Cred *syscall.Credential
}

// NewHost makes a host with a new state directory.
func NewHost(t testing.TB) *Host {
	t.Helper()
	state := t.TempDir()
	// Run as root, the agent runs as an unprivileged user (--agent-user):
	// it must be able to reach its state directory.
	os.Chmod(filepath.Dir(state), 0o755)
	return HostAt(t, state)
}

// HostAt is the host whose state directory is state: its agent is stopped
// when the test ends, and its log shown when the test failed.
func HostAt(t testing.TB, state string) *Host {
	t.Helper()
	h := &Host{T: t, State: state}
	t.Cleanup(func() {
		get, _ := testkit.Binaries(t)
		exec.Command(get, "--config", os.DevNull, "--state-dir", h.State, "stop").Run()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(h.State, "agent.log")); err == nil {
				t.Logf("agent log %s:\n%s", h.State, b)
			}
		}
	})
	return h
}

// Result is what one pkgtorrent-get run did: its --json summary, exit
// code, stderr and wall time.
type Result struct {
	fetch.Result
	Code   int
	Stderr string
	Wall   time.Duration
}

// Get runs pkgtorrent-get on this host (no config file, peers on
// 127.0.0.1, seeding 2 minutes, --json) with stdin and args, and parses
// its summary when it exits 0.
func (h *Host) Get(stdin string, args ...string) Result {
	h.T.Helper()
	r, stdout := h.run(stdin, args...)
	if r.Code == 0 {
		if err := json.Unmarshal(stdout, &r.Result); err != nil {
			h.T.Fatalf("bad --json output %q: %v", stdout, err)
		}
	}
	return r
}

// Run is Get without reading the summary (for commands such as stop).
func (h *Host) Run(stdin string, args ...string) Result {
	h.T.Helper()
	r, _ := h.run(stdin, args...)
	return r
}

func (h *Host) run(stdin string, args ...string) (Result, []byte) {
	h.T.Helper()
	get, _ := testkit.Binaries(h.T)
	base := []string{"--config", os.DevNull, "--state-dir", h.State, "--peer-host", "127.0.0.1", "--seed-time", "2m", "--json"}
	cmd := exec.Command(get, append(base, args...)...)
	cmd.Env = testkit.CleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	if h.Cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: h.Cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Wall: time.Since(start), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		h.T.Fatal(err)
	}
	return r, stdout.Bytes()
}

// Stop stops the host's agent.
func (h *Host) Stop() {
	h.T.Helper()
	get, _ := testkit.Binaries(h.T)
	if out, err := exec.Command(get, "--config", os.DevNull, "--state-dir", h.State, "stop").CombinedOutput(); err != nil {
		h.T.Fatalf("stopping the agent of %s: %v %s", h.State, err, out)
	}
}

// Output runs pkgtorrent-get on this host (no config file) with args and
// returns its stdout, failing the test when it fails.
func (h *Host) Output(args ...string) string {
	h.T.Helper()
	get, _ := testkit.Binaries(h.T)
	cmd := exec.Command(get, append([]string{"--config", os.DevNull, "--state-dir", h.State}, args...)...)
	cmd.Env = testkit.CleanEnv()
	out, err := cmd.Output()
	if err != nil {
		h.T.Fatalf("pkgtorrent-get %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// Status is the status of the host's agent (from_peers, from_webseed,
// uploaded, pid, ...), or nil when none runs.
func (h *Host) Status() map[string]float64 {
	h.T.Helper()
	return AgentStatus(h.T, "", "--config", os.DevNull, "--state-dir", h.State)
}

// AgentStatus runs `pkgtorrent-get ARGS status --json` with the binary get
// ("": the built one) and returns the status, or nil when no agent runs.
func AgentStatus(t testing.TB, get string, args ...string) map[string]float64 {
	t.Helper()
	if get == "" {
		get, _ = testkit.Binaries(t)
	}
	out, err := exec.Command(get, append(args, "status", "--json")...).Output()
	if err != nil {
		return nil
	}
	var m map[string]float64
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("status: %v: %s", err, out)
	}
	return m
}

// Stats reads the counters of the service at url.
func Stats(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(api.StatsURL(url))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
