package pacman

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// The tests run real processes on 127.0.0.1: pkgtorrent-service over a
// repository tree built with repo-add, and pacman 6 on private roots, each
// root with its own pkgtorrent state directory (its own agent, a "host").

// needTools skips the test when a tool is missing (fails it under CI) and
// in -short runs.
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	testkit.NeedTool(t, tools...)
	if testing.Short() {
		t.Skip("runs pacman and builds the binaries")
	}
}

func TestMain(m *testing.M) { testkit.Main(m) }

type service struct {
	url string
}

// startService runs pkgtorrent-service over root.
func startService(t testing.TB, root string, extra ...string) service {
	t.Helper()
	return service{url: testkit.StartService(t, root, extra...)}
}

// stats reads the service's counters.
func (s service) stats(t testing.TB) map[string]float64 {
	t.Helper()
	return e2e.Stats(t, s.url)
}

// pkg is a test package: its files hold random bytes.
type pkg struct {
	name, version string
	deps          []string
	// size of its one data file, usr/share/<name>/data.
	size int
}

func (p pkg) fileName() string { return p.name + "-" + p.version + "-any.pkg.tar.zst" }

// testPkgs are five packages with dependencies between them; installing
// "app" pulls all of them. "big" is over 5 MB.
var testPkgs = []pkg{
	{name: "base-lib", version: "1.0-1", size: 120_000},
	{name: "libfoo", version: "2.3-1", deps: []string{"base-lib"}, size: 300_001},
	{name: "libbar", version: "1:0.9-2", deps: []string{"base-lib>=1.0"}, size: 65_537},
	{name: "big", version: "5.1-1", deps: []string{"libfoo"}, size: 5_500_000},
	{name: "app", version: "1.0-1", deps: []string{"libfoo", "libbar", "big"}, size: 40_000},
}

// repoArch is the $arch of the test repository; its packages are "any".
const repoArch = "x86_64"

// repo is a pacman repository tree: root/core/os/x86_64/.
type repo struct {
	root string
	dir  string
	// data holds each package's data file content.
	data map[string][]byte
}

// buildRepo writes testPkgs as .pkg.tar.zst (a .PKGINFO and the files,
// packed with bsdtar) into root/core/os/x86_64 and builds core.db with
// repo-add.
func buildRepo(t testing.TB, seed int64, pkgs []pkg) repo {
	t.Helper()
	return buildRepoIn(t, t.TempDir(), seed, pkgs)
}

// buildRepoIn is buildRepo into the directory root.
func buildRepoIn(t testing.TB, root string, seed int64, pkgs []pkg) repo {
	t.Helper()
	r := repo{root: root, data: map[string][]byte{}}
	r.dir = filepath.Join(r.root, "core", "os", repoArch)
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.add(t, seed, pkgs)
	return r
}

// add packs pkgs into the repository and adds them to its database
// (replacing older versions there).
func (r repo) add(t testing.TB, seed int64, pkgs []pkg) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	var files []string
	for _, p := range pkgs {
		stage := t.TempDir()
		data := make([]byte, p.size)
		rng.Read(data)
		r.data[p.name] = data
		write(t, filepath.Join(stage, "usr", "share", p.name, "data"), data)
		var info strings.Builder
		fmt.Fprintf(&info, "pkgname = %s\npkgbase = %s\npkgver = %s\npkgdesc = pkgtorrent test package\n", p.name, p.name, p.version)
		fmt.Fprintf(&info, "url = http://example.invalid/\nbuilddate = 1700000000\npackager = pkgtorrent tests\nsize = %d\narch = any\nlicense = MIT\n", p.size)
		for _, d := range p.deps {
			fmt.Fprintf(&info, "depend = %s\n", d)
		}
		write(t, filepath.Join(stage, ".PKGINFO"), []byte(info.String()))
		out := filepath.Join(r.dir, p.fileName())
		cmd := exec.Command("bsdtar", "--zstd", "-cf", out, ".PKGINFO", "usr")
		cmd.Dir = stage
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bsdtar: %v\n%s", err, b)
		}
		files = append(files, out)
	}
	db := filepath.Join(r.dir, "core.db.tar.gz")
	old, oldErr := os.Stat(db)
	cmd := exec.Command("repo-add", append([]string{"-q", db}, files...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("repo-add: %v\n%s", err, b)
	}
	if oldErr == nil {
		// pacman asks for the database If-Modified-Since the time it got
		// (whole seconds): a database rebuilt within the same second would
		// be "not modified", and the update not seen.
		next := old.ModTime().Add(2 * time.Second)
		if err := os.Chtimes(db, next, next); err != nil {
			t.Fatal(err)
		}
	}
}

func write(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pacRoot is one machine: a pacman root with its own configuration, cache
// and log, and its own pkgtorrent configuration and state directory.
type pacRoot struct {
	t                            testing.TB
	dir, conf, root, db, cache   string
	log, getConf, state, xferLog string
	// env is added to the environment of the commands run on this root.
	env []string
	// host is the root's agent.
	host *e2e.Host
}

// newRoot makes a pacman root whose repository core has the given Server
// templates; xfer is the XferCommand line ("" for pacman's own
// downloader), in which @GET@ stands for the pkgtorrent-get command with
// this root's configuration, @WRAP@ for a wrapper around it that logs
// its arguments and exit status to xferLog, and @ROOT@ for the root
// directory (files installed there). getConf is the body of this
// root's pkgtorrent.conf, with @STATE@ for its state directory.
func newRoot(t testing.TB, servers []string, xfer, getConf string) *pacRoot {
	t.Helper()
	get, _ := testkit.Binaries(t)
	d := t.TempDir()
	// The unprivileged agent user must reach the state directory.
	os.Chmod(filepath.Dir(d), 0o755)
	os.Chmod(d, 0o755)
	r := &pacRoot{t: t, dir: d,
		conf: filepath.Join(d, "pacman.conf"), root: filepath.Join(d, "root"),
		cache: filepath.Join(d, "cache"), log: filepath.Join(d, "pacman.log"),
		getConf: filepath.Join(d, "pkgtorrent.conf"), state: filepath.Join(d, "state"),
		xferLog: filepath.Join(d, "xfer.log")}
	r.db = filepath.Join(r.root, "var", "lib", "pacman")
	for _, p := range []string{r.db, r.cache, r.state} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, r.getConf, []byte(strings.ReplaceAll(getConf, "@STATE@", r.state)))
	getCmd := get + " --config " + r.getConf
	wrap := filepath.Join(d, "xfer-wrap")
	write(t, wrap, []byte(fmt.Sprintf("#!/bin/sh\n%s \"$@\"\nrc=$?\necho \"$rc $*\" >> %s\nexit $rc\n", getCmd, r.xferLog)))
	if err := os.Chmod(wrap, 0o755); err != nil {
		t.Fatal(err)
	}
	var c strings.Builder
	fmt.Fprintf(&c, "[options]\nRootDir = %s\nDBPath = %s\nCacheDir = %s\nLogFile = %s\nGPGDir = %s\n", r.root, r.db, r.cache, r.log, filepath.Join(d, "gnupg"))
	fmt.Fprintf(&c, "HookDir = %s\nSigLevel = Never\nArchitecture = %s\n", filepath.Join(d, "hooks"), repoArch)
	if xfer != "" {
		xfer = strings.ReplaceAll(xfer, "@GET@", getCmd)
		xfer = strings.ReplaceAll(xfer, "@WRAP@", wrap)
		xfer = strings.ReplaceAll(xfer, "@ROOT@", r.root)
		fmt.Fprintf(&c, "XferCommand = %s\n", xfer)
	}
	c.WriteString("\n[core]\n")
	for _, s := range servers {
		fmt.Fprintf(&c, "Server = %s\n", s)
	}
	write(t, r.conf, []byte(c.String()))
	r.host = e2e.HostAt(t, r.state)
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{r.log, r.xferLog} {
				if b, err := os.ReadFile(f); err == nil {
					t.Logf("%s:\n%s", f, b)
				}
			}
		}
	})
	return r
}

// pacArgs are the arguments that point pacman at this root.
func (r *pacRoot) pacArgs(op ...string) []string {
	return append([]string{"--config", r.conf, "--root", r.root, "--dbpath", r.db, "--cachedir", r.cache}, op...)
}

type run struct {
	code           int
	stdout, stderr string
}

// pacman runs pacman on this root.
func (r *pacRoot) pacman(op ...string) run {
	return r.exec("pacman", r.pacArgs(op...)...)
}

// batch runs the batch script on this root.
func (r *pacRoot) batch(op ...string) run {
	script, err := filepath.Abs("pkgtorrent-pacman")
	if err != nil {
		r.t.Fatal(err)
	}
	return r.exec("bash", append([]string{script}, r.pacArgs(op...)...)...)
}

func (r *pacRoot) exec(name string, args ...string) run {
	get, _ := testkit.Binaries(r.t)
	cmd := exec.Command(name, args...)
	// Later values win: r.env may set other ones.
	cmd.Env = append(append(testkit.CleanEnv(), "PKGTORRENT_GET="+get, "PKGTORRENT_GET_ARGS=--config "+r.getConf), r.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := run{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("%s: %v", name, err)
	}
	return res
}

// checkInstalled checks that every package of pkgs is installed with its
// data, and that the cache holds exactly the repository's package files.
func (r *pacRoot) checkInstalled(rp repo, pkgs []pkg) {
	r.t.Helper()
	for _, p := range pkgs {
		got, err := os.ReadFile(filepath.Join(r.root, "usr", "share", p.name, "data"))
		if err != nil {
			r.t.Fatalf("%s: %v", p.name, err)
		}
		if !bytes.Equal(got, rp.data[p.name]) {
			r.t.Fatalf("%s: installed data differs", p.name)
		}
	}
	var want []string
	for _, p := range pkgs {
		want = append(want, p.fileName())
		got, err := os.ReadFile(filepath.Join(r.cache, p.fileName()))
		if err != nil {
			r.t.Fatalf("cache: %v", err)
		}
		orig, err := os.ReadFile(filepath.Join(rp.dir, p.fileName()))
		if err != nil {
			r.t.Fatal(err)
		}
		if !bytes.Equal(got, orig) {
			r.t.Fatalf("cached %s differs from the repository's", p.fileName())
		}
	}
	if got := r.cacheEntries(); strings.Join(got, " ") != strings.Join(sorted(want), " ") {
		r.t.Fatalf("cache holds %q, want %q", got, sorted(want))
	}
}

func (r *pacRoot) cacheEntries() []string {
	entries, _ := os.ReadDir(r.cache)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return sorted(names)
}

// logErrors returns the lines of pacman's log that report an error or a
// warning.
func (r *pacRoot) logErrors() []string {
	b, err := os.ReadFile(r.log)
	if err != nil {
		r.t.Fatal(err)
	}
	var bad []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "] Running '") {
			continue
		}
		if strings.Contains(strings.ToLower(l), "error") || strings.Contains(strings.ToLower(l), "warning") {
			bad = append(bad, l)
		}
	}
	return bad
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}
