package pacman

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/packaging/dist"
)

// The Arch packages as built by `go run ./packaging`, installed with
// pacman -U into private roots, run from the installed files.

var archPkgs = []string{"pkgtorrent archlinux", "pkgtorrent-service archlinux", "pkgtorrent-pacman archlinux"}

var built testkit.Once[dist.Packages]

// buildPackages builds the packages once per test binary.
func buildPackages(t testing.TB) dist.Packages {
	t.Helper()
	return built.Get(t, func() (dist.Packages, error) {
		dir, err := testkit.SharedDir("pkgtorrent-pacman-dist-")
		if err != nil {
			return nil, err
		}
		pkgs, _, err := dist.Build("../..", dir, archPkgs...)
		return pkgs, err
	})
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

// configureGet sets the service, state directory and peer address (and
// the extra lines) in the root's installed pkgtorrent-get config, as an
// admin would, and returns its path.
func (r *pacRoot) configureGet(svc string, extra ...string) string {
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
	s += fmt.Sprintf("\nservice = %q\npeer-host = \"127.0.0.1\"\npeer-grace = \"5s\"\n", svc) + strings.Join(extra, "\n") + "\n"
	write(r.t, conf, []byte(s))
	return conf
}
