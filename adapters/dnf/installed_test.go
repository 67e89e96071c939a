package dnf

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/packaging/dist"
)

// The packages as built by `go run ./packaging`, installed into dnf
// installroots, run from the installed files.

// pluginDirInstalled is where python3-dnf-plugin-pkgtorrent puts the plugin
// (packaging's default).
const pluginDirInstalled = "/usr/lib/python3.9/site-packages/dnf-plugins"

var rpms = []string{"pkgtorrent rpm", "pkgtorrent-service rpm", "python3-dnf-plugin-pkgtorrent rpm", "yum-plugin-pkgtorrent rpm"}

var built struct {
	once sync.Once
	pkgs dist.Packages
	err  error
}

// buildPackages builds the packages once per test binary.
func buildPackages(t *testing.T) dist.Packages {
	t.Helper()
	setup(t)
	built.once.Do(func() {
		out := filepath.Join(shared.dir, "dist")
		built.pkgs, _, built.err = dist.Build("../..", out, rpms...)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.pkgs
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

// TestInstalledDnfPlugin installs the rpms into the installroot, points dnf
// at the installed plugin and its shipped config (with only the paths of
// the root's pkgtorrent-get and its config set, as the root is not /),
// runs the installed pkgtorrent-service, and installs the test packages:
// they come through pkgtorrent (service and agent counters), dnf downloads
// none itself. Then a malformed plugin config: dnf logs one line and works
// without the plugin.
func TestInstalledDnfPlugin(t *testing.T) {
	setup(t)
	mir := startMirror(t, shared.tree, 0)
	h := newHost(t, []string{mir.url + "el/"}, "")
	installRPMs(t, h.root)
	get := filepath.Join(h.root, "usr/bin/pkgtorrent-get")
	svc := startServiceBin(t, filepath.Join(h.root, "usr/bin/pkgtorrent-service"), filepath.Join(shared.tree, "el"))
	getConf := configureGet(t, h.root, svc, h.state)
	h.pluginpath = filepath.Join(h.root, pluginDirInstalled)
	h.plugins = filepath.Join(h.root, "etc/dnf/plugins")
	pluginConf := filepath.Join(h.plugins, "pkgtorrent.conf")
	editFile(t, pluginConf, func(s string) string {
		return strings.Replace(s, "[main]\n", "[main]\ncommand = "+get+"\nconfig = "+getConf+"\n", 1)
	})

	out, err := h.dnf(t, append([]string{"install"}, installArgs...)...)
	if err != nil {
		t.Fatalf("dnf install: %v\n%s", err, out)
	}
	if strings.Contains(out, "Failed loading plugin") {
		t.Fatalf("dnf did not load the installed plugin:\n%s", out)
	}
	h.installed(t)
	if files, _, _ := fetched(t, out); files != len(packages) {
		t.Errorf("plugin fetched %d files, want %d", files, len(packages))
	}
	skippedAll(t, out, packages)
	if got := mir.rpmRequests(dnfAgent); len(got) != 0 {
		t.Errorf("dnf downloaded packages itself: %v", got)
	}
	st := serviceStats(t, svc)
	if st["torrent_requests"] == 0 || st["file_bytes_sent"] == 0 {
		t.Errorf("the installed service built no torrent or sent no file bytes: %v", st)
	}
	// The agent the installed pkgtorrent-get started, in the state
	// directory of the installed config.
	b, err := exec.Command(get, "--config", getConf, "status", "--json").Output()
	if err != nil {
		t.Fatalf("pkgtorrent-get status: %v", err)
	}
	var status map[string]float64
	if err := json.Unmarshal(b, &status); err != nil {
		t.Fatalf("status: %v: %s", err, b)
	}
	if got := status["from_webseed"] + status["from_peers"]; got < float64(totalSize()) {
		t.Errorf("the agent fetched %.0f bytes, want the %d of the packages", got, totalSize())
	}
	t.Logf("installed plugin: %d bytes through pkgtorrent; service sent %.0f file bytes", totalSize(), st["file_bytes_sent"])

	// A malformed plugin config: one line, dnf works (plugin disabled).
	doc := packages[4]
	for _, c := range []struct{ name, conf string }{
		{"line without =", "[main]\nenabled = 1\nthis line is no setting\n"},
		{"no section header", "enabled = 1\n"},
		{"enabled not a boolean", "[main]\nenabled = maybe\n"},
		{"timeout not a number", "[main]\nenabled = 1\ncommand = " + get + "\nconfig = " + getConf + "\ntimeout = soon\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(pluginConf, []byte(c.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := h.dnf(t, "remove", doc.name)
			if err != nil {
				t.Fatalf("dnf remove with a malformed plugin config: %v\n%s", err, out)
			}
			oneLine(t, out)
			// dnf downloads it again itself (not from its cache).
			cached, _ := filepath.Glob(filepath.Join(h.root, "var/cache/dnf/ptrepo-*/packages", rpmFile(doc)))
			for _, f := range cached {
				os.Remove(f)
			}
			before := len(mir.rpmRequests(dnfAgent))
			out, err = h.dnf(t, "install", doc.name)
			if err != nil {
				t.Fatalf("dnf install with a malformed plugin config: %v\n%s", err, out)
			}
			oneLine(t, out)
			if got := len(mir.rpmRequests(dnfAgent)) - before; got != 1 {
				t.Errorf("dnf downloaded %d packages itself, want 1\n%s", got, out)
			}
			h.installed(t)
		})
	}
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
	svc := startServiceBin(t, filepath.Join(root, "usr/bin/pkgtorrent-service"), shared.tree)
	out := pythonTests(t, dnfPython, "../yum",
		"PT_TEST_PLUGIN_DIR="+filepath.Join(root, "usr/lib/yum-plugins"),
		"PT_TEST_PLUGIN_CONF="+filepath.Join(root, "etc/yum/pluginconf.d/pkgtorrent.conf"),
		"PT_TEST_GET="+filepath.Join(root, "usr/bin/pkgtorrent-get"), "PT_TEST_SERVICE="+svc,
		"PT_TEST_REPO="+filepath.Join(shared.tree, "el"))
	if strings.Contains(out, "skipped") {
		t.Fatalf("tests of the installed yum plugin skipped:\n%s", out)
	}
	if st := serviceStats(t, svc); st["torrent_requests"] == 0 {
		t.Errorf("the installed service built no torrent: %v", st)
	}
	t.Logf("installed yum plugin: %s", lastLine(out))
}
