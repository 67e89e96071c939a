package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// A bad flag is named on stderr, and the exit status is 2: a script that
// runs pkgtorrent-get (the pacman batch script) shows why it failed.
func TestBadFlagSaid(t *testing.T) {
	for _, args := range [][]string{{"--no-such-setting"}, {"--stall-timeout", "soon"}} {
		var stdout, stderr bytes.Buffer
		code := run(append(args, "--batch", "-"), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "pkgtorrent-get: ") || !strings.Contains(stderr.String(), strings.TrimPrefix(args[len(args)-1], "--")) {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}

// max-cpus limits pkgtorrent-get itself too; a negative number is refused
// before anything is fetched.
func TestMaxCPUs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--config", "/dev/null", "--state-dir", dir, "--max-cpus", "-1", "status"}, strings.NewReader(""), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "max-cpus: -1 is negative") {
		t.Errorf("--max-cpus -1: exit %d, stderr %q", code, stderr.String())
	}
	runtime.GOMAXPROCS(2)
	stderr.Reset()
	run([]string{"--config", "/dev/null", "--state-dir", dir, "status"}, strings.NewReader(""), &stdout, &stderr)
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("after a run with the default max-cpus: GOMAXPROCS %d, want 1 (stderr %q)", n, stderr.String())
	}
}
