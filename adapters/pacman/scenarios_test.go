package pacman

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/scenario"
)

// TestScenarios runs the adapters' conformance table against pacman's two
// ways to pkgtorrent: the XferCommand (pkgtorrent-get per file) and the
// batch script (one batch, then pacman).
func TestScenarios(t *testing.T) {
	needTools(t, pacmanTools...)
	scenario.Run(t, pacmanAdapter{batch: false}, pacmanAdapter{batch: true})
}

type pacmanAdapter struct{ batch bool }

var _ scenario.Adapter = pacmanAdapter{}

func (a pacmanAdapter) Name() string {
	if a.batch {
		return "pacman batch"
	}
	return "pacman XferCommand"
}

var scenarioRepo testkit.Once[repo]

func (pacmanAdapter) repo(t *testing.T) repo {
	return scenarioRepo.Get(t, func() (repo, error) {
		dir, err := testkit.SharedDir("pkgtorrent-pacman-repo-")
		if err != nil {
			return repo{}, err
		}
		return buildRepoIn(t, dir, 20, testPkgs), nil
	})
}

func (a pacmanAdapter) Repo(t *testing.T) scenario.Repo {
	rp := a.repo(t)
	r := scenario.Repo{Root: rp.root}
	for _, p := range testPkgs {
		r.Packages = append(r.Packages, filepath.Join("core/os", repoArch, p.fileName()))
	}
	return r
}

func (a pacmanAdapter) NewHost(t *testing.T, env scenario.Env) scenario.Host {
	servers := []string{env.Mirror + "$repo/os/$arch"}
	extra := []string{fmt.Sprintf("mirror = [%q]", env.Mirror)}
	if env.ConnectTimeout > 0 {
		extra = append(extra, fmt.Sprintf("connect-timeout = %q", env.ConnectTimeout.String()))
	}
	if env.StallTimeout > 0 {
		extra = append(extra, fmt.Sprintf("stall-timeout = %q", env.StallTimeout.String()))
	}
	h := pacHost{a: a, rp: a.repo(t)}
	if !env.Packaged {
		xfer := "@GET@ %u %o"
		if a.batch {
			xfer = "" // pacman downloads itself when the batch fails
		}
		h.r = newRoot(t, servers, xfer, getConf(env.Service, extra...))
		return h
	}
	if a.batch {
		h.r = newRoot(t, servers, "", "")
		h.r.install("pkgtorrent", "pkgtorrent-pacman")
		conf := h.r.configureGet(env.Service, extra...)
		h.r.env = []string{"PKGTORRENT_GET=" + filepath.Join(h.r.root, "usr/bin/pkgtorrent-get"), "PKGTORRENT_GET_ARGS=--config " + conf}
		h.script = filepath.Join(h.r.root, "usr/bin/pkgtorrent-pacman")
	} else {
		h.r = newRoot(t, servers, "@ROOT@/usr/bin/pkgtorrent-get --config @ROOT@/etc/pkgtorrent/pkgtorrent.conf %u %o", "")
		h.r.install("pkgtorrent")
		h.r.configureGet(env.Service, extra...)
	}
	return h
}

func (pacmanAdapter) InstalledService(t *testing.T) (string, string) {
	server := newRoot(t, nil, "", "")
	server.install("pkgtorrent-service")
	return filepath.Join(server.root, "usr/bin/pkgtorrent-service"), ""
}

func (pacmanAdapter) MalformedConfs() (map[string]string, string) {
	return nil, "pacman reaches pkgtorrent through its XferCommand or the batch script, neither of which has a plugin conf (pkgtorrent-get's own config: cmd/pkgtorrent-get)"
}

func (a pacmanAdapter) Says(s string) string {
	switch {
	case s == "service down" || s == "stall timeout":
		if a.batch {
			return "pkgtorrent-pacman: batch fetch failed; pacman downloads on its own"
		}
		return "downloading over plain HTTP"
	case s == "bad checksum":
		if a.batch {
			return "sha256"
		}
		return "corrupted"
	}
	return ""
}

// pacHost is a pacman root running one transaction: -Sy app.
type pacHost struct {
	a      pacmanAdapter
	rp     repo
	r      *pacRoot
	script string // the batch script: "" for the checkout's
}

func (h pacHost) Install(t *testing.T) scenario.Outcome {
	start := time.Now()
	var res run
	switch {
	case !h.a.batch:
		res = h.r.pacman("-Sy", "--noconfirm", "app")
	case h.script != "":
		res = h.r.exec(h.script, h.r.pacArgs("-Sy", "--noconfirm", "app")...)
	default:
		res = h.r.batch("-Sy", "--noconfirm", "app")
	}
	o := scenario.Outcome{OK: res.code == 0, Output: res.stdout + res.stderr, Wall: time.Since(start)}
	if o.OK {
		if bad := h.r.logErrors(); len(bad) > 0 {
			t.Errorf("pacman's log reports %q", bad)
		}
	}
	return o
}

func (h pacHost) Installed(t *testing.T) { h.r.checkInstalled(h.rp, testPkgs) }
func (h pacHost) Dir() string            { return h.r.dir }
func (h pacHost) State() string          { return h.r.state }
