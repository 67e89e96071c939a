package pacman

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/packaging/dist"
)

// The Arch packages as built by `go run ./packaging`, installed with
// pacman -U into private roots, run from the installed files.

var archPkgs = []string{"pkgtorrent archlinux", "pkgtorrent-service archlinux", "pkgtorrent-pacman archlinux"}

var built struct {
	once sync.Once
	dir  string
	pkgs dist.Packages
	err  error
}

// buildPackages builds the packages once per test binary.
func buildPackages(t testing.TB) dist.Packages {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "pkgtorrent-pacman-dist-"); built.err != nil {
			return
		}
		built.pkgs, _, built.err = dist.Build("../..", built.dir, archPkgs...)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.pkgs
}

// install installs packages into the root with pacman -U, without their
// install scriptlets (useradd and systemctl, run chrooted into a root that
// has no shell) and with pacman itself taken as installed (the machine's).
func (r *pacRoot) install(names ...string) {
	r.t.Helper()
	pkgs := buildPackages(r.t)
	args := []string{"-U", "--noconfirm", "--noscriptlet", "--assume-installed", "pacman=6.0.2"}
	for _, n := range names {
		args = append(args, pkgs.Path(n+" archlinux"))
	}
	if res := r.pacman(args...); res.code != 0 {
		r.t.Fatalf("pacman -U: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	// The agent user runs the installed pkgtorrent-get.
	os.Chmod(r.root, 0o755)
	if q := r.pacman("-Q", names[0]); q.code != 0 || q.stdout != names[0]+" "+dist.Version+"-"+dist.Release+"\n" {
		r.t.Fatalf("pacman -Q %s after pacman -U: %q %s", names[0], q.stdout, q.stderr)
	}
}

var stateDirLine = regexp.MustCompile(`(?m)^state-dir = .*$`)

// configureGet sets the service, state directory and peer address in the
// root's installed pkgtorrent-get config, as an admin would, and returns
// its path.
func (r *pacRoot) configureGet(svc string) string {
	r.t.Helper()
	conf := filepath.Join(r.root, "etc/pkgtorrent/pkgtorrent.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		r.t.Fatal(err)
	}
	if !stateDirLine.Match(b) {
		r.t.Fatalf("the shipped %s sets no state-dir:\n%s", conf, b)
	}
	s := stateDirLine.ReplaceAllString(string(b), fmt.Sprintf("state-dir = %q", r.state))
	s += fmt.Sprintf("\nservice = %q\npeer-host = \"127.0.0.1\"\n", svc)
	write(r.t, conf, []byte(s))
	return conf
}

// TestInstalledArchPackages installs the Arch packages with pacman -U:
// pkgtorrent-service into a server root, whose installed binary serves the
// repository; pkgtorrent into a root whose XferCommand is the installed
// pkgtorrent-get with its installed config; pkgtorrent and pkgtorrent-pacman
// into a root that installs through the installed batch script (and no
// XferCommand, so that pacman would download itself if the batch failed).
// Both install the test packages, and the bytes came through pkgtorrent:
// the agents' counters and the service's torrents.
func TestInstalledArchPackages(t *testing.T) {
	needTools(t, pacmanTools...)
	rp := buildRepo(t, 8, testPkgs)
	total := sizeOf(testPkgs, rp.dir, t)

	server := newRoot(t, nil, "", "")
	server.install("pkgtorrent-service")
	svc := startServiceBin(t, filepath.Join(server.root, "usr/bin/pkgtorrent-service"), rp.root)
	servers := []string{svc.url + "$repo/os/$arch"}

	xfer := newRoot(t, servers, "@ROOT@/usr/bin/pkgtorrent-get --config @ROOT@/etc/pkgtorrent/pkgtorrent.conf %u %o", "")
	xfer.install("pkgtorrent")
	xfer.configureGet(svc.url)

	batch := newRoot(t, servers, "", "")
	batch.install("pkgtorrent", "pkgtorrent-pacman")
	conf := batch.configureGet(svc.url)
	batch.env = []string{"PKGTORRENT_GET=" + filepath.Join(batch.root, "usr/bin/pkgtorrent-get"), "PKGTORRENT_GET_ARGS=--config " + conf}

	for _, c := range []struct {
		name string
		r    *pacRoot
		run  func() run
	}{
		{"XferCommand", xfer, func() run { return xfer.pacman("-Sy", "--noconfirm", "app") }},
		{"batch script", batch, func() run {
			return batch.exec(filepath.Join(batch.root, "usr/bin/pkgtorrent-pacman"), batch.pacArgs("-Sy", "--noconfirm", "app")...)
		}},
	} {
		before := svc.stats(t)["torrent_requests"]
		res := c.run()
		if res.code != 0 {
			t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", c.name, res.code, res.stdout, res.stderr)
		}
		if strings.Contains(res.stderr, "pkgtorrent-pacman:") || strings.Contains(res.stderr, "plain HTTP") {
			t.Errorf("%s: pkgtorrent was not used:\n%s", c.name, res.stderr)
		}
		c.r.checkInstalled(rp, testPkgs)
		if bad := c.r.logErrors(); len(bad) > 0 {
			t.Errorf("%s: pacman's log reports %q", c.name, bad)
		}
		st := c.r.agentStatus()
		if got := st["from_webseed"] + st["from_peers"]; got < float64(total) {
			t.Errorf("%s: the agent fetched %.0f bytes, less than the %d of the packages", c.name, got, total)
		}
		if n := svc.stats(t)["torrent_requests"] - before; n == 0 {
			t.Errorf("%s: no torrent requests at the installed service", c.name)
		}
		t.Logf("%s: agent got %.0f bytes from peers, %.0f from webseeds (packages: %d bytes)", c.name, st["from_peers"], st["from_webseed"], total)
	}
}
