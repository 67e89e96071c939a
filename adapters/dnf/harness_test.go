package dnf

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// The harness: tools, binaries, the test repository, a service, a plain
// mirror that logs its requests, and dnf runs in installroots.

// dnfPython is the Python that has dnf's modules (the python3 on PATH may
// be another one).
const dnfPython = "/usr/bin/python3"

// needDnf checks for dnf, its Python modules, rpmbuild and createrepo_c,
// and root.
func needDnf(t *testing.T) {
	t.Helper()
	testkit.NeedTool(t, "dnf", "rpm", "rpmbuild", "createrepo_c", dnfPython)
	testkit.NeedRoot(t, "dnf install into an installroot (rpm chroots)")
}

var shared struct {
	once sync.Once
	dir  string
	err  error
	get  string // pkgtorrent-get
	svc  string // pkgtorrent-service
	tree string // mirror tree: el/ is the repository
}

func TestMain(m *testing.M) { testkit.Main(m) }

// setup builds the binaries and the repository once.
func setup(t *testing.T) {
	t.Helper()
	needDnf(t)
	shared.get, shared.svc = testkit.Binaries(t)
	shared.once.Do(func() {
		if shared.dir, shared.err = testkit.SharedDir("pkgtorrent-dnf-"); shared.err != nil {
			return
		}
		shared.tree = filepath.Join(shared.dir, "tree")
		shared.err = buildRepo(filepath.Join(shared.dir, "rpmbuild"), filepath.Join(shared.tree, "el"))
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
}

// testPackage is one rpm of the test repository.
type testPackage struct {
	name     string
	size     int // bytes of random payload
	requires []string
}

// packages: installing ptbig, pttools and ptdoc pulls in all five.
var packages = []testPackage{
	{"ptbig", 6 << 20, []string{"ptlib"}},
	{"ptlib", 300 << 10, nil},
	{"pttools", 120 << 10, []string{"ptlib", "ptdata"}},
	{"ptdata", 500 << 10, nil},
	{"ptdoc", 40 << 10, nil},
}

var installArgs = []string{"ptbig", "pttools", "ptdoc"}

func rpmFile(p testPackage) string { return p.name + "-1.0-1.noarch.rpm" }

// repoPath is where the rpm lies in the repository, as in real ones
// (Packages/<letter>/).
func repoPath(p testPackage) string { return filepath.Join("Packages", p.name[2:3], rpmFile(p)) }

// buildRepo builds the rpms with rpmbuild (random payloads, so that they
// do not compress away) and runs createrepo_c over repo.
func buildRepo(top, repo string) error {
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	for _, p := range packages {
		var req string
		for _, r := range p.requires {
			req += "Requires: " + r + "\n"
		}
		spec := fmt.Sprintf(`Name: %[1]s
Version: 1.0
Release: 1
Summary: pkgtorrent test package %[1]s
License: MIT
BuildArch: noarch
%[2]s
%%description
pkgtorrent test package.
%%install
mkdir -p %%{buildroot}/usr/share/%[1]s
head -c %[3]d /dev/urandom > %%{buildroot}/usr/share/%[1]s/data
%%files
/usr/share/%[1]s/data
`, p.name, req, p.size)
		specPath := filepath.Join(top, p.name+".spec")
		if err := os.MkdirAll(top, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
			return err
		}
		cmd := exec.Command("rpmbuild", "--define", "_topdir "+top, "-bb", specPath)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("rpmbuild %s: %v\n%s", p.name, err, b)
		}
		b, err := os.ReadFile(filepath.Join(top, "RPMS", "noarch", rpmFile(p)))
		if err != nil {
			return err
		}
		dst := filepath.Join(repo, repoPath(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	if b, err := exec.Command("createrepo_c", "-q", repo).CombinedOutput(); err != nil {
		return fmt.Errorf("createrepo_c: %v\n%s", err, b)
	}
	return nil
}

// dnfHost is one machine: an installroot, its dnf config directories and
// its pkgtorrent state directory.
type dnfHost struct {
	dir, root, repos, plugins, state string
	// pluginpath is dnf's plugin directory; "": the checkout's.
	pluginpath string
}

// newHost writes the repository file (the given baseurls) and the plugin
// config (the [main] settings given, plus repo sections).
func newHost(t *testing.T, baseurls []string, pluginConf string) dnfHost {
	t.Helper()
	d := t.TempDir()
	// The unprivileged agent user must reach the state directory.
	os.Chmod(filepath.Dir(d), 0o755)
	os.Chmod(d, 0o755)
	h := dnfHost{
		dir:     d,
		root:    filepath.Join(d, "root"),
		repos:   filepath.Join(d, "repos.d"),
		plugins: filepath.Join(d, "plugins"),
		state:   filepath.Join(d, "state"),
	}
	for _, dir := range []string{h.repos, h.plugins} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	repo := fmt.Sprintf("[ptrepo]\nname=pkgtorrent test\nbaseurl=%s\ngpgcheck=0\nenabled=1\n", strings.Join(baseurls, " "))
	if err := os.WriteFile(filepath.Join(h.repos, "pt.repo"), []byte(repo), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := strings.ReplaceAll(pluginConf, "@STATE@", h.state)
	conf = strings.ReplaceAll(conf, "@GET@", shared.get)
	if err := os.WriteFile(filepath.Join(h.plugins, "pkgtorrent.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	e2e.HostAt(t, h.state)
	return h
}

// pluginDir is the checkout's dnf plugin directory.
func pluginDir(t *testing.T) string {
	d, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// dnf runs dnf in the host's installroot with the plugin from the checkout
// and returns its combined output.
func (h dnfHost) dnf(t *testing.T, args ...string) (string, error) {
	t.Helper()
	pluginpath := h.pluginpath
	if pluginpath == "" {
		pluginpath = pluginDir(t)
	}
	base := []string{"/usr/bin/dnf", "--installroot", h.root, "--releasever", "12",
		"--setopt=reposdir=" + h.repos,
		"--setopt=pluginpath=" + pluginpath,
		"--setopt=pluginconfpath=" + h.plugins,
		"--setopt=keepcache=1",
		"--disablerepo=*", "--enablerepo=ptrepo", "-y"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, base[0], append(base[1:], args...)...)
	cmd.Env = testkit.CleanEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// installed checks that every test package is installed in the root with
// its payload.
func (h dnfHost) installed(t *testing.T) {
	t.Helper()
	out, err := exec.Command("rpm", "--root", h.root, "-q", "ptbig", "ptlib", "pttools", "ptdata", "ptdoc").CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -q: %v\n%s", err, out)
	}
	for _, p := range packages {
		st, err := os.Stat(filepath.Join(h.root, "usr/share", p.name, "data"))
		if err != nil || st.Size() != int64(p.size) {
			t.Fatalf("%s payload not installed: %v", p.name, err)
		}
	}
}

var fetchedRE = regexp.MustCompile(`pkgtorrent: fetched (\d+) files \([^)]*\) in [0-9.]+s: (\d+) bytes from peers, (\d+) bytes from webseeds`)

// fetched parses the plugin's success line: files, bytes from peers, from
// webseeds.
func fetched(t *testing.T, out string) (files int, peers, webseeds int64) {
	t.Helper()
	m := fetchedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no pkgtorrent success line in dnf output:\n%s", out)
	}
	files, _ = strconv.Atoi(m[1])
	peers, _ = strconv.ParseInt(m[2], 10, 64)
	webseeds, _ = strconv.ParseInt(m[3], 10, 64)
	return
}

// skippedAll checks that dnf found every package already downloaded.
func skippedAll(t *testing.T, out string, pkgs []testPackage) {
	t.Helper()
	for _, p := range pkgs {
		if !strings.Contains(out, "[SKIPPED] "+rpmFile(p)+": Already downloaded") {
			t.Errorf("dnf did not find %s already downloaded:\n%s", rpmFile(p), out)
		}
	}
}

// pluginConf returns a plugin config: [main] with the service, the host's
// state directory and the binary from this build, then extra lines.
func pluginConf(service string, extra ...string) string {
	return "[main]\nenabled=1\ncommand=@GET@\nconfig=" + os.DevNull + "\nservice=" + service +
		"\nstate_dir=@STATE@\ntimeout=120\nconnect_timeout=3\nstall_timeout=20\n" + strings.Join(extra, "\n") + "\n"
}

func totalSize() (n int64) {
	for _, p := range packages {
		st, err := os.Stat(filepath.Join(shared.tree, "el", repoPath(p)))
		if err == nil {
			n += st.Size()
		}
	}
	return n
}
