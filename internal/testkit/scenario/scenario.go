// Package scenario is the adapters' conformance table: every scenario a
// package-manager adapter must pass (hosts share, service down, bad
// checksum, stall timeout, malformed plugin conf, packaged install), run
// against every adapter given to Run, restic-style. An adapter package
// (adapters/pacman: XferCommand and the batch script; adapters/dnf: the
// dnf plugin and the yum plugin's stand-in) implements Adapter over its
// own harness and calls Run once: a new adapter gets every scenario by
// being one more argument, a new scenario reaches every adapter by being
// one more row of Scenarios.
package scenario

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// Repo is an adapter's test repository.
type Repo struct {
	// Root is the tree the service and the plain mirror serve.
	Root string
	// Packages are the files (relative to Root) one transaction installs.
	Packages []string
}

// Env is what a scenario sets up for a host.
type Env struct {
	// Service is the pkgtorrent service (dead or hanging in some
	// scenarios); Mirror the plain HTTP mirror of the repository, where
	// the package manager downloads on its own.
	Service, Mirror string
	// ConnectTimeout and StallTimeout, when not 0, are set in the
	// adapter's configuration.
	ConnectTimeout, StallTimeout time.Duration
	// PluginConf, when not "", is the adapter's plugin configuration as
	// written (malformed); @GET@ and @STATE@ stand for the host's
	// pkgtorrent-get and state directory.
	PluginConf string
	// Packaged: the host runs the adapter from its installed packages.
	Packaged bool
}

// Outcome is how one transaction ended.
type Outcome struct {
	OK     bool
	Output string // what the package manager and the adapter printed
	Wall   time.Duration
}

// Host is one machine of an adapter.
type Host interface {
	// Install runs one transaction installing the repository's packages.
	Install(t *testing.T) Outcome
	// Installed fails the test unless every package is installed with the
	// repository's bytes.
	Installed(t *testing.T)
	// Dir holds all the package manager writes (roots, caches); State is
	// the host's pkgtorrent state directory (it may lie in Dir).
	Dir() string
	State() string
}

// Adapter is one way a package manager reaches pkgtorrent.
type Adapter interface {
	Name() string
	// Repo is the test repository, built once per test binary.
	Repo(t *testing.T) Repo
	NewHost(t *testing.T, env Env) Host
	// InstalledService installs the adapter's packages as a mirror would
	// and returns the installed pkgtorrent-service, or "" and why not.
	InstalledService(t *testing.T) (bin, why string)
	// MalformedConfs are plugin configurations (by name) the package
	// manager must survive; nil and why when the adapter has none.
	MalformedConfs() (confs map[string]string, why string)
	// Says is what the transaction's output must contain in a scenario
	// ("" for nothing in particular).
	Says(scenario string) string
}

// Scenario is one row of the table.
type Scenario struct {
	Name string
	Run  func(t *testing.T, a Adapter, s Setup)
}

// Scenarios is the table.
var Scenarios = []Scenario{
	{"hosts share", hostsShare},
	{"service down", serviceDown},
	{"bad checksum", badChecksum},
	{"stall timeout", stallTimeout},
	{"malformed plugin conf", malformedConf},
	{"packaged install", packagedInstall},
}

// Run runs every scenario against every adapter, as subtests
// ADAPTER/SCENARIO.
func Run(t *testing.T, adapters ...Adapter) {
	for _, a := range adapters {
		t.Run(a.Name(), func(t *testing.T) {
			for _, sc := range Scenarios {
				t.Run(sc.Name, func(t *testing.T) {
					repo := a.Repo(t)
					sc.Run(t, a, Setup{Repo: repo, Mirror: testkit.StartMirror(t, repo.Root, 0), scenario: sc.Name})
				})
			}
		})
	}
}

// Setup is what every scenario starts from: the repository and a plain
// mirror of it that logs who fetched what.
type Setup struct {
	Repo     Repo
	Mirror   *testkit.Mirror
	scenario string
}

func (s Setup) size(t *testing.T) (n int64) {
	for _, p := range s.Repo.Packages {
		st, err := os.Stat(filepath.Join(s.Repo.Root, p))
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// ownDownloads are the packages the mirror served whole (agents, which
// take the mirror as a webseed, mostly ask for ranges): to the package
// manager, and, with goClients, to any Go client, pkgtorrent-get's plain
// HTTP fallback (and an agent asking for a small file whole).
func (s Setup) ownDownloads(goClients bool) []string {
	var got []string
	for _, r := range s.Mirror.Requests("", "") {
		if r.Range != "" || r.Bytes == 0 || (!goClients && strings.HasPrefix(r.Agent, "Go-http-client/")) {
			continue
		}
		for _, p := range s.Repo.Packages {
			if strings.HasSuffix(r.Path, "/"+filepath.Base(p)) && !slices.Contains(got, p) {
				got = append(got, p)
			}
		}
	}
	sort.Strings(got)
	return got
}

// install runs a transaction that must succeed and install everything,
// and checks what the adapter must say.
func (s Setup) install(t *testing.T, a Adapter, h Host) Outcome {
	t.Helper()
	o := h.Install(t)
	if !o.OK {
		t.Fatalf("transaction failed after %s:\n%s", o.Wall.Round(time.Millisecond), o.Output)
	}
	h.Installed(t)
	s.says(t, a, o)
	return o
}

func (s Setup) says(t *testing.T, a Adapter, o Outcome) {
	t.Helper()
	if want := a.Says(s.scenario); want != "" && !strings.Contains(o.Output, want) {
		t.Errorf("no %q in the output:\n%s", want, o.Output)
	}
}

// throughPkgtorrent checks that the host's agent fetched the packages and
// the package manager downloaded none itself.
func (s Setup) throughPkgtorrent(t *testing.T, h Host) map[string]float64 {
	t.Helper()
	if own := s.ownDownloads(false); len(own) != 0 {
		t.Errorf("the package manager downloaded from the mirror itself: %v\n%s", own, s.Mirror)
	}
	st := (&e2e.Host{T: t, State: h.State()}).Status()
	if got := st["from_webseed"] + st["from_peers"]; got < float64(s.size(t)) {
		t.Errorf("the agent fetched %.0f bytes, less than the %d of the packages", got, s.size(t))
	}
	return st
}

// fellBack checks that the package manager downloaded every package itself.
func (s Setup) fellBack(t *testing.T) {
	t.Helper()
	want := slices.Sorted(slices.Values(s.Repo.Packages))
	if own := s.ownDownloads(true); !slices.Equal(own, want) {
		t.Errorf("downloaded from the mirror itself %v, want all of %v\n%s", own, want, s.Mirror)
	}
}

// hostsShare: two hosts install one after the other through a
// rate-limited service; the second gets bytes from the first.
func hostsShare(t *testing.T, a Adapter, s Setup) {
	total := s.size(t)
	// The origin alone would need ~2 s per host.
	svc := testkit.StartService(t, s.Repo.Root, "--origin-rate-limit", fmt.Sprint(total/2))
	env := Env{Service: svc, Mirror: s.Mirror.URL}
	var peers float64
	for i, h := range []Host{a.NewHost(t, env), a.NewHost(t, env)} {
		o := s.install(t, a, h)
		st := s.throughPkgtorrent(t, h)
		t.Logf("host %d: %s, %.0f bytes from peers, %.0f from webseeds, uploaded %.0f", i, o.Wall.Round(time.Millisecond), st["from_peers"], st["from_webseed"], st["uploaded"])
		peers = st["from_peers"]
	}
	t.Logf("the service sent %.0f file bytes for two installs of %d", e2e.Stats(t, svc)["file_bytes_sent"], total)
	if peers == 0 {
		t.Error("the second host got no bytes from the first")
	}
}

// serviceDown: the package manager installs on its own.
func serviceDown(t *testing.T, a Adapter, s Setup) {
	h := a.NewHost(t, Env{Service: testkit.DeadURL(t), Mirror: s.Mirror.URL, ConnectTimeout: time.Second})
	o := s.install(t, a, h)
	s.fellBack(t)
	if o.Wall > 90*time.Second {
		t.Errorf("took %s", o.Wall)
	}
}

// stallTimeout: the service accepts connections and never answers; after
// the stall timeout the package manager installs on its own.
func stallTimeout(t *testing.T, a Adapter, s Setup) {
	h := a.NewHost(t, Env{Service: testkit.HangingURL(t), Mirror: s.Mirror.URL, ConnectTimeout: time.Second, StallTimeout: 2 * time.Second})
	o := s.install(t, a, h)
	s.fellBack(t)
	t.Logf("installed in %s past a hanging service", o.Wall.Round(time.Millisecond))
	if o.Wall > 90*time.Second {
		t.Errorf("took %s", o.Wall)
	}
}

// badChecksum: the service's copy of one package differs from the
// repository's (same size): the transaction installs the repository's
// bytes (the package manager downloads that one itself, or pkgtorrent-get's
// direct fetch takes it from the mirror, checked against the repository's
// sha256) or fails, and the corrupt bytes are nowhere in the host outside
// pkgtorrent's state.
func badChecksum(t *testing.T, a Adapter, s Setup) {
	bad := t.TempDir()
	if out, err := exec.Command("cp", "-a", s.Repo.Root+"/.", bad).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	victim := s.Repo.Packages[1]
	p := filepath.Join(bad, victim)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b) && i < len(b)/2+4096; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	h := a.NewHost(t, Env{Service: testkit.StartService(t, bad), Mirror: s.Mirror.URL})
	o := h.Install(t)
	own := s.ownDownloads(false)
	switch {
	case o.OK && len(own) == 0:
		// Nobody seeds the batch: pkgtorrent-get downloaded the files from
		// the package manager's mirror itself (its direct fetch), checked
		// against the repository's sha256, and placed the mirror's victim
		// (the agent, which checks the torrent's pieces, does not seed it).
		t.Logf("pkgtorrent placed the mirror's copy of %s (direct fetch)", victim)
		h.Installed(t)
	case o.OK:
		s.says(t, a, o)
		h.Installed(t)
		if !slices.Equal(own, []string{victim}) {
			t.Errorf("downloaded %v itself, want only %s\n%s", own, victim, s.Mirror)
		}
	default:
		s.says(t, a, o)
		t.Logf("the transaction failed (safely):\n%s", o.Output)
	}
	filepath.WalkDir(h.Dir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && path == h.State() {
			return filepath.SkipDir
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(b)) {
			if got, _ := os.ReadFile(path); bytes.Equal(got, b) {
				t.Errorf("the corrupt %s is at %s", victim, path)
			}
		}
		return nil
	})
}

// malformedConf: with each malformed plugin configuration the package
// manager installs on its own (the plugin disabled, or its setting
// refused) with the service up.
func malformedConf(t *testing.T, a Adapter, s Setup) {
	confs, why := a.MalformedConfs()
	if confs == nil {
		t.Skip(why)
	}
	svc := testkit.StartService(t, s.Repo.Root)
	for _, name := range slices.Sorted(maps.Keys(confs)) {
		t.Run(name, func(t *testing.T) {
			m := testkit.StartMirror(t, s.Repo.Root, 0)
			s := Setup{Repo: s.Repo, Mirror: m, scenario: s.scenario}
			s.install(t, a, a.NewHost(t, Env{Service: svc, Mirror: m.URL, PluginConf: confs[name]}))
			s.fellBack(t)
		})
	}
}

// packagedInstall: the service, pkgtorrent-get and the adapter as their
// packages install them; the packages come through pkgtorrent.
func packagedInstall(t *testing.T, a Adapter, s Setup) {
	bin, why := a.InstalledService(t)
	if bin == "" {
		t.Skip(why)
	}
	svc := testkit.StartServiceBin(t, bin, s.Repo.Root)
	h := a.NewHost(t, Env{Service: svc, Mirror: s.Mirror.URL, Packaged: true})
	s.install(t, a, h)
	st := s.throughPkgtorrent(t, h)
	if n := e2e.Stats(t, svc)["torrent_requests"]; n == 0 {
		t.Errorf("no torrent requests at the installed service")
	}
	t.Logf("packaged: the agent got %.0f bytes from peers, %.0f from webseeds", st["from_peers"], st["from_webseed"])
}
