package dnf

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
	"github.com/pkgtorrent/pkgtorrent/packaging/dist"
)

// The packages as built by `go run ./packaging`, installed into dnf
// installroots, run from the installed files.

// pluginDirInstalled is where python3-dnf-plugin-pkgtorrent puts the plugin
// (packaging's default).
const pluginDirInstalled = "/usr/lib/python3.9/site-packages/dnf-plugins"

var rpms = []string{"pkgtorrent rpm", "pkgtorrent-service rpm", "python3-dnf-plugin-pkgtorrent rpm", "yum-plugin-pkgtorrent rpm"}

var built testkit.Once[dist.Packages]

// buildPackages builds the packages once per test binary.
func buildPackages(t *testing.T) dist.Packages {
	t.Helper()
	setup(t)
	return built.Get(t, func() (dist.Packages, error) {
		pkgs, _, err := dist.Build("../..", filepath.Join(shared.dir, "dist"), rpms...)
		return pkgs, err
	})
}

// installRPMs installs the project's rpms into root with rpm --root, as
// files and database entries: without their scripts (they would run
// useradd and systemctl in the root) and without dependencies (python3-dnf
// and yum are the machine's, not the root's).
func installRPMs(t *testing.T, root string) {
	t.Helper()
	pkgs := buildPackages(t)
	args := []string{"--root", root, "-i", "--nodeps", "--noscripts"}
	for _, p := range rpms {
		args = append(args, pkgs.Path(p))
	}
	if out, err := exec.Command("rpm", args...).CombinedOutput(); err != nil {
		t.Fatalf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// The agent user runs the installed pkgtorrent-get: the root must be
	// reachable.
	os.Chmod(root, 0o755)
}

// editFile rewrites a file of an installed package as an admin would.
func editFile(t *testing.T, path string, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
}

var stateDirLine = regexp.MustCompile(`(?m)^state-dir = .*$`)

// configureGet sets the service and state directory in the installed
// pkgtorrent-get config of root, and returns its path.
func configureGet(t *testing.T, root, service, state string) string {
	t.Helper()
	conf := filepath.Join(root, "etc/pkgtorrent/pkgtorrent.conf")
	editFile(t, conf, func(s string) string {
		if !stateDirLine.MatchString(s) {
			t.Fatalf("the shipped %s sets no state-dir:\n%s", conf, s)
		}
		return stateDirLine.ReplaceAllString(s, "state-dir = \""+state+"\"") + "\nservice = \"" + service + "\"\n"
	})
	return conf
}

// oneLine checks that the plugin said exactly one thing, that it is
// disabled.
func oneLine(t *testing.T, out string) {
	t.Helper()
	if n := strings.Count(out, "pkgtorrent:"); n != 1 || !strings.Contains(out, "pkgtorrent: plugin disabled: ") {
		t.Errorf("want one line 'pkgtorrent: plugin disabled: ...', got %d lines:\n%s", n, out)
	}
	if strings.Contains(out, "Traceback") || strings.Contains(out, "Error:") {
		t.Errorf("dnf reports an error:\n%s", out)
	}
}

// TestInstalledYumPlugin runs the yum plugin's tests (yum 3 itself cannot
// be installed here: a stand-in conduit) against the files of the installed
// yum-plugin-pkgtorrent rpm: the plugin and its module imported from the
// installed directory, its shipped config, and the installed pkgtorrent-get
// fetching from the installed service into the stand-in yum cache.
func TestInstalledYumPlugin(t *testing.T) {
	setup(t)
	root := filepath.Join(t.TempDir(), "root")
	os.Chmod(filepath.Dir(root), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(root)), 0o755)
	installRPMs(t, root)
	svc := testkit.StartServiceBin(t, filepath.Join(root, "usr/bin/pkgtorrent-service"), shared.tree)
	out := pythonTests(t, dnfPython, "../yum",
		"PT_TEST_PLUGIN_DIR="+filepath.Join(root, "usr/lib/yum-plugins"),
		"PT_TEST_PLUGIN_CONF="+filepath.Join(root, "etc/yum/pluginconf.d/pkgtorrent.conf"),
		"PT_TEST_GET="+filepath.Join(root, "usr/bin/pkgtorrent-get"), "PT_TEST_SERVICE="+svc,
		"PT_TEST_REPO="+filepath.Join(shared.tree, "el"))
	if strings.Contains(out, "skipped") {
		t.Fatalf("tests of the installed yum plugin skipped:\n%s", out)
	}
	if st := e2e.Stats(t, svc); st["torrent_requests"] == 0 {
		t.Errorf("the installed service built no torrent: %v", st)
	}
	t.Logf("installed yum plugin: %s", lastLine(out))
}
