package dnf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// dnfAgent is the user agent of dnf's own downloads (librepo via libdnf).
const dnfAgent = "libdnf"

func same(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(x) != string(y) {
		t.Fatalf("%s differs from %s", a, b)
	}
}

// TestDnfDownloadsItself: with the plugin disabled, pkgtorrent-get
// missing, or pkgtorrent-get hanging past the plugin's timeout, the same
// install succeeds through dnf's own download. (The service down, the
// service hanging, and the table's other scenarios: scenarios_test.go.)
func TestDnfDownloadsItself(t *testing.T) {
	setup(t)
	mir := testkit.StartMirror(t, shared.tree, 0)
	dead := "http://127.0.0.1:1/"
	hang := filepath.Join(t.TempDir(), "hang")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, conf, line string
	}{
		{"plugin disabled", strings.Replace(pluginConf(dead), "enabled=1", "enabled=0", 1), ""},
		{"pkgtorrent-get missing", strings.Replace(pluginConf(dead), "command=@GET@", "command=/nonexistent/pkgtorrent-get", 1), "pkgtorrent: cannot run /nonexistent/pkgtorrent-get"},
		{"pkgtorrent-get hangs", strings.Replace(strings.Replace(pluginConf(dead), "command=@GET@", "command="+hang, 1), "timeout=120", "timeout=1", 1), "took longer than 1s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, []string{mir.URL + "el/"}, c.conf)
			before := len(mir.Requests(".rpm", dnfAgent))
			start := time.Now()
			out, err := h.dnf(t, append([]string{"install"}, installArgs...)...)
			if err != nil {
				t.Fatalf("dnf install: %v\n%s", err, out)
			}
			h.installed(t)
			if c.line == "" && strings.Contains(out, "pkgtorrent:") {
				t.Errorf("disabled plugin ran:\n%s", out)
			}
			if c.line != "" && !strings.Contains(out, c.line) {
				t.Errorf("no %q in dnf output:\n%s", c.line, out)
			}
			if n := strings.Count(out, "pkgtorrent:"); n > 1 {
				t.Errorf("plugin logged %d lines, want one:\n%s", n, out)
			}
			if got := len(mir.Requests(".rpm", dnfAgent)) - before; got != len(packages) {
				t.Errorf("dnf downloaded %d packages itself, want %d\n%s", got, len(packages), mir)
			}
			if d := time.Since(start); d > 90*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestDnfDownloadCommand: `dnf download` (dnf-plugins-core) goes through
// base.download_packages too, so the plugin prefetches its packages.
func TestDnfDownloadCommand(t *testing.T) {
	setup(t)
	if out, err := exec.Command(dnfPython, "-c", "import dnfpluginscore").CombinedOutput(); err != nil {
		testkit.Missing(t, "dnf-plugins-core is missing: %v\n%s", err, out)
	}
	svc := testkit.StartService(t, shared.tree)
	mir := testkit.StartMirror(t, shared.tree, 0)
	h := newHost(t, []string{mir.URL + "el/"}, pluginConf(svc, "[ptrepo]", "path=el"))
	dest := t.TempDir()
	// dnf download loads its command from dnf-plugins-core's directory.
	out, err := h.dnf(t, "--setopt=pluginpath="+pluginDir(t)+",/usr/lib/python3/dist-packages/dnf-plugins",
		"download", "--destdir", dest, "ptbig", "ptdoc")
	if err != nil {
		t.Fatalf("dnf download: %v\n%s", err, out)
	}
	if files, _, _ := fetched(t, out); files != 2 {
		t.Errorf("plugin fetched %d files, want 2", files)
	}
	for _, p := range []testPackage{packages[0], packages[4]} {
		same(t, filepath.Join(dest, rpmFile(p)), filepath.Join(shared.tree, "el", repoPath(p)))
	}
	if got := mir.Requests(".rpm", dnfAgent); len(got) != 0 {
		t.Errorf("dnf downloaded packages itself: %v", got)
	}
}

// TestLocalRepoLeftToDnf: packages of a file:// repository are dnf's own:
// the plugin runs no batch for them.
func TestLocalRepoLeftToDnf(t *testing.T) {
	setup(t)
	svc := testkit.StartService(t, shared.tree)
	h := newHost(t, []string{"file://" + filepath.Join(shared.tree, "el") + "/"}, pluginConf(svc))
	out, err := h.dnf(t, append([]string{"install"}, installArgs...)...)
	if err != nil {
		t.Fatalf("dnf install: %v\n%s", err, out)
	}
	h.installed(t)
	if strings.Contains(out, "pkgtorrent:") {
		t.Errorf("plugin acted on a file:// repository:\n%s", out)
	}
	if n := e2e.Stats(t, svc)["torrent_requests"]; n != 0 {
		t.Errorf("service got %v torrent requests", n)
	}
}
