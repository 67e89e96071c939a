package control

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// ParseArgs takes only what Args writes, names what it refuses, and fills
// what is left out from Defaults.
func TestParseArgs(t *testing.T) {
	s, err := ParseArgs([]string{"--state-dir", "/s", "--mirror", "http://a/x,y", "--mirror", "http://b/"})
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults
	want.StateDir, want.Mirrors = "/s", []string{"http://a/x,y", "http://b/"}
	if s.StateDir != want.StateDir || s.SeedTime != want.SeedTime || s.CrossBatch != want.CrossBatch || s.LogLevel != want.LogLevel ||
		strings.Join(s.Mirrors, " ") != strings.Join(want.Mirrors, " ") {
		t.Errorf("got %+v, want %+v", s, want)
	}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--state-dir", "/s", "--batch", "-"}, "batch"},
		{[]string{"--state-dir", "/s", "--seed-time", "long"}, "seed-time"},
		{[]string{"--state-dir", "/s", "agent"}, `"agent"`},
		{[]string{"--seed-time", "1m"}, "state-dir"},
	} {
		if _, err := ParseArgs(c.args); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseArgs(%q): %v, want an error naming %s", c.args, err, c.says)
		}
	}
}

// AgentPath finds the agent beside pkgtorrent-get (a build directory), else
// in ../lib/pkgtorrent (the packages' layout), and says where it looked.
func TestAgentPath(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "usr", "bin")
	lib := filepath.Join(root, "usr", "lib", "pkgtorrent")
	for _, d := range []string{bin, lib} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(bin, "pkgtorrent-get")
	if _, err := AgentPath(exe); err == nil || !strings.Contains(err.Error(), filepath.Join(lib, AgentBinary)) {
		t.Errorf("no agent anywhere: %v", err)
	}
	// Not executable: not taken.
	if err := os.WriteFile(filepath.Join(lib, AgentBinary), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := AgentPath(exe); err == nil {
		t.Errorf("non-executable agent taken: %s", p)
	}
	os.Chmod(filepath.Join(lib, AgentBinary), 0o755)
	if p, err := AgentPath(exe); err != nil || p != filepath.Join(lib, AgentBinary) {
		t.Errorf("installed layout: %q, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(bin, AgentBinary), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := AgentPath(exe); err != nil || p != filepath.Join(bin, AgentBinary) {
		t.Errorf("beside pkgtorrent-get: %q, %v", p, err)
	}
}

// LimitCPUs sets GOMAXPROCS; 0 leaves it; negative is an error.
func TestLimitCPUs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	if err := LimitCPUs(0); err != nil || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("LimitCPUs(0): %v, GOMAXPROCS %d; want nil, 2", err, runtime.GOMAXPROCS(0))
	}
	if err := LimitCPUs(1); err != nil || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("LimitCPUs(1): %v, GOMAXPROCS %d; want nil, 1", err, runtime.GOMAXPROCS(0))
	}
	if err := LimitCPUs(-1); err == nil || !strings.Contains(err.Error(), "max-cpus") || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("LimitCPUs(-1): %v, GOMAXPROCS %d; want an error naming max-cpus, 1", err, runtime.GOMAXPROCS(0))
	}
}

// TestProfileCPU: the profile goes to prefix.<pid>; one that cannot be
// written is said, not skipped in silence (an agent running as the agent
// user cannot write into a directory only root may).
func TestProfileCPU(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PKGTORRENT_CPUPROFILE", filepath.Join(dir, "p"))
	var out strings.Builder
	ProfileCPU(&out)()
	if fi, err := os.Stat(filepath.Join(dir, fmt.Sprintf("p.%d", os.Getpid()))); err != nil || fi.Size() == 0 {
		t.Fatalf("no profile written: %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("said %q for a profile written", out.String())
	}

	t.Setenv("PKGTORRENT_CPUPROFILE", filepath.Join(dir, "missing", "p"))
	ProfileCPU(&out)()
	if !strings.Contains(out.String(), "PKGTORRENT_CPUPROFILE") || !strings.Contains(out.String(), "missing") {
		t.Fatalf("a profile that cannot be written: said %q", out.String())
	}

	t.Setenv("PKGTORRENT_CPUPROFILE", "")
	out.Reset()
	ProfileCPU(&out)()
	if out.Len() != 0 {
		t.Fatalf("said %q without the variable", out.String())
	}
}
