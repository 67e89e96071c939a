package main

import (
	"bytes"
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
