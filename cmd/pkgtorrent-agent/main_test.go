package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Bad options are named on stderr with exit status 2; the agent itself
// refuses root.
func TestRun(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--state-dir", t.TempDir(), "--batch", "-"}, "unknown flag: --batch"},
		{[]string{"--seed-time", "1m"}, "no --state-dir"},
	} {
		var stderr bytes.Buffer
		if code := run(c.args, &stderr); code != 2 || !strings.Contains(stderr.String(), "pkgtorrent-agent: "+c.says) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", c.args, code, stderr.String(), c.says)
		}
	}
	if os.Geteuid() == 0 {
		var stderr bytes.Buffer
		if code := run([]string{"--state-dir", t.TempDir()}, &stderr); code != 1 || !strings.Contains(stderr.String(), "root") {
			t.Errorf("as root: exit %d, %q", code, stderr.String())
		}
	}
}
