package dnf

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dnfAgent is the user agent of dnf's own downloads (librepo via libdnf).
const dnfAgent = "libdnf"

// TestThreeInstallroots: three hosts run `dnf install` at once with the
// plugin, the origins rate-limited. The repository has two mirrors: a
// plain HTTP mirror (first in baseurl, so dnf's own downloads would go
// there, logged by user agent) and the pkgtorrent service, whose tree holds
// the repository at el/ (plugin setting path=el). Every transaction
// succeeds, dnf downloads no package itself, and peers carry bytes.
func TestThreeInstallroots(t *testing.T) {
	setup(t)
	const rateLimit = 2 << 20 // bytes/s at each origin
	svc := startService(t, shared.tree, "--origin-rate-limit", "2097152")
	mir := startMirror(t, shared.tree, rateLimit)
	conf := pluginConf(svc, "[ptrepo]", "path=el")
	var hosts []dnfHost
	for range 3 {
		hosts = append(hosts, newHost(t, []string{mir.url + "el/", svc + "el/"}, conf))
	}
	outs := make([]string, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = h.dnf(t, append([]string{"install"}, installArgs...)...)
		}()
	}
	wg.Wait()
	var peers, webseeds int64
	for i, h := range hosts {
		if errs[i] != nil {
			t.Fatalf("host %d: dnf install: %v\n%s", i, errs[i], outs[i])
		}
		h.installed(t)
		files, p, w := fetched(t, outs[i])
		if files != len(packages) {
			t.Errorf("host %d: plugin fetched %d files, want %d", i, files, len(packages))
		}
		skippedAll(t, outs[i], packages)
		peers += p
		webseeds += w
		// keepcache=1: the cached packages are the repository's.
		for _, p := range packages {
			matches, _ := filepath.Glob(filepath.Join(h.root, "var/cache/dnf/ptrepo-*/packages", rpmFile(p)))
			if len(matches) != 1 {
				t.Fatalf("host %d: %s not in dnf's cache", i, rpmFile(p))
			}
			same(t, matches[0], filepath.Join(shared.tree, "el", repoPath(p)))
		}
	}
	if got := mir.rpmRequests(dnfAgent); len(got) != 0 {
		t.Errorf("dnf downloaded packages itself: %v\nmirror log:\n%s", got, mir)
	}
	st := serviceStats(t, svc)
	t.Logf("3 hosts x %d bytes: %d bytes from peers, %d from webseeds; service sent %.0f file bytes, the plain mirror %d (webseed requests: %d)",
		totalSize(), peers, webseeds, st["file_bytes_sent"], mir.bytes(), len(mir.rpmRequests("")))
	if peers == 0 {
		t.Errorf("peers carried no bytes (webseeds %d)", webseeds)
	}
}

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

// TestDnfDownloadsItself: with the service down, the plugin disabled,
// pkgtorrent-get missing, or pkgtorrent-get hanging past the plugin's
// timeout, the same install succeeds through dnf's own download.
func TestDnfDownloadsItself(t *testing.T) {
	setup(t)
	mir := startMirror(t, shared.tree, 0)
	dead := "http://127.0.0.1:1/"
	hang := filepath.Join(t.TempDir(), "hang")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, conf, line string
	}{
		{"service down", pluginConf(dead, "[ptrepo]", "path=el"), "pkgtorrent: service unreachable"},
		{"plugin disabled", strings.Replace(pluginConf(dead), "enabled=1", "enabled=0", 1), ""},
		{"pkgtorrent-get missing", strings.Replace(pluginConf(dead), "command=@GET@", "command=/nonexistent/pkgtorrent-get", 1), "pkgtorrent: cannot run /nonexistent/pkgtorrent-get"},
		{"pkgtorrent-get hangs", strings.Replace(strings.Replace(pluginConf(dead), "command=@GET@", "command="+hang, 1), "timeout=120", "timeout=1", 1), "took longer than 1s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, []string{mir.url + "el/"}, c.conf)
			before := len(mir.rpmRequests(dnfAgent))
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
			if got := len(mir.rpmRequests(dnfAgent)) - before; got != len(packages) {
				t.Errorf("dnf downloaded %d packages itself, want %d\n%s", got, len(packages), mir)
			}
			if d := time.Since(start); d > 90*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestChecksumMismatch: the service's copy of one package differs from the
// repository metadata (same size, other bytes). pkgtorrent-get does not
// place it (the sha256 from the metadata fails) but places the others; dnf
// downloads that one itself and the transaction succeeds. Here the
// service's tree is the repository itself (no path setting).
func TestChecksumMismatch(t *testing.T) {
	setup(t)
	bad := t.TempDir()
	src := filepath.Join(shared.tree, "el")
	if out, err := exec.Command("cp", "-a", src+"/.", bad).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	victim := packages[3] // ptdata
	st, err := os.Stat(filepath.Join(bad, repoPath(victim)))
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, st.Size())
	rand.Read(junk)
	if err := os.WriteFile(filepath.Join(bad, repoPath(victim)), junk, 0o644); err != nil {
		t.Fatal(err)
	}
	svc := startService(t, bad)
	mir := startMirror(t, shared.tree, 0)
	h := newHost(t, []string{mir.url + "el/"}, pluginConf(svc))
	out, err := h.dnf(t, append([]string{"install"}, installArgs...)...)
	if err != nil {
		t.Fatalf("dnf install: %v\n%s", err, out)
	}
	h.installed(t)
	if !strings.Contains(out, "1 of 5 files not placed") || !strings.Contains(out, "sha256") {
		t.Errorf("plugin did not report the mismatch:\n%s", out)
	}
	var others []testPackage
	for _, p := range packages {
		if p.name != victim.name {
			others = append(others, p)
		}
	}
	skippedAll(t, out, others)
	if left, _ := filepath.Glob(filepath.Join(h.root, "var/cache/dnf/ptrepo-*/packages/.*.pkgtorrent-*")); len(left) != 0 {
		t.Errorf("temporary files left in dnf's cache: %v", left)
	}
	got := mir.rpmRequests(dnfAgent)
	if len(got) != 1 || !strings.HasSuffix(got[0].path, rpmFile(victim)) {
		t.Errorf("dnf downloaded %v itself, want only %s\n%s", got, rpmFile(victim), mir)
	}
}

// TestDnfDownloadCommand: `dnf download` (dnf-plugins-core) goes through
// base.download_packages too, so the plugin prefetches its packages.
func TestDnfDownloadCommand(t *testing.T) {
	setup(t)
	if out, err := exec.Command(dnfPython, "-c", "import dnfpluginscore").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dnf-plugins-core is missing: %v\n%s", err, out)
		}
		t.Skipf("dnf-plugins-core is missing: %s", out)
	}
	svc := startService(t, shared.tree)
	mir := startMirror(t, shared.tree, 0)
	h := newHost(t, []string{mir.url + "el/"}, pluginConf(svc, "[ptrepo]", "path=el"))
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
	if got := mir.rpmRequests(dnfAgent); len(got) != 0 {
		t.Errorf("dnf downloaded packages itself: %v", got)
	}
}

// TestLocalRepoLeftToDnf: packages of a file:// repository are dnf's own:
// the plugin runs no batch for them.
func TestLocalRepoLeftToDnf(t *testing.T) {
	setup(t)
	svc := startService(t, shared.tree)
	h := newHost(t, []string{"file://" + filepath.Join(shared.tree, "el") + "/"}, pluginConf(svc))
	out, err := h.dnf(t, append([]string{"install"}, installArgs...)...)
	if err != nil {
		t.Fatalf("dnf install: %v\n%s", err, out)
	}
	h.installed(t)
	if strings.Contains(out, "pkgtorrent:") {
		t.Errorf("plugin acted on a file:// repository:\n%s", out)
	}
	if n := serviceStats(t, svc)["torrent_requests"]; n != 0 {
		t.Errorf("service got %v torrent requests", n)
	}
}
