package dnf

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/scenario"
)

// TestScenarios runs the adapters' conformance table against the dnf
// plugin (real dnf in installroots) and the yum 3 plugin (its stand-in
// transaction, ../yum/yum_standin.py).
func TestScenarios(t *testing.T) {
	setup(t)
	scenario.Run(t, dnfAdapter{}, yumAdapter{})
}

// rpmRepo is the test repository of both: the rpms and createrepo_c's
// metadata at the root of the tree.
func rpmRepo(t *testing.T) scenario.Repo {
	setup(t)
	r := scenario.Repo{Root: filepath.Join(shared.tree, "el")}
	for _, p := range packages {
		r.Packages = append(r.Packages, repoPath(p))
	}
	return r
}

// installedService installs the rpms into a root of their own, as on a
// mirror, and returns the installed pkgtorrent-service.
func installedService(t *testing.T) (string, string) {
	root := filepath.Join(t.TempDir(), "server")
	os.Chmod(filepath.Dir(root), 0o755)
	installRPMs(t, root)
	return filepath.Join(root, "usr/bin/pkgtorrent-service"), ""
}

// hostPluginConf is the plugin config of a host: env's own (malformed), or
// [main] with the service, this build's pkgtorrent-get and env's timeouts.
func hostPluginConf(env scenario.Env) string {
	if env.PluginConf != "" {
		return env.PluginConf
	}
	conf := pluginConf(env.Service)
	if env.ConnectTimeout > 0 {
		conf = strings.Replace(conf, "connect_timeout=3", "connect_timeout="+seconds(env.ConnectTimeout), 1)
	}
	if env.StallTimeout > 0 {
		conf = strings.Replace(conf, "stall_timeout=20", "stall_timeout="+seconds(env.StallTimeout), 1)
	}
	return conf
}

func seconds(d time.Duration) string { return strings.TrimSuffix(d.String(), "s") }

// usePackages points a plugin config installed in root at the root's
// pkgtorrent-get and its installed config (set to the service and state
// directory), as an admin would where the root is not /.
func usePackages(t *testing.T, root, pluginConf, service, state string) {
	t.Helper()
	getConf := configureGet(t, root, service, state)
	editFile(t, pluginConf, func(s string) string {
		return strings.Replace(s, "[main]\n", "[main]\ncommand = "+filepath.Join(root, "usr/bin/pkgtorrent-get")+"\nconfig = "+getConf+"\n", 1)
	})
}

// dnfAdapter: the dnf 4 plugin, dnf install in an installroot.
type dnfAdapter struct{}

var _ scenario.Adapter = dnfAdapter{}

func (dnfAdapter) Name() string                                   { return "dnf" }
func (dnfAdapter) Repo(t *testing.T) scenario.Repo                { return rpmRepo(t) }
func (dnfAdapter) InstalledService(t *testing.T) (string, string) { return installedService(t) }

func (dnfAdapter) NewHost(t *testing.T, env scenario.Env) scenario.Host {
	if !env.Packaged {
		return dnfScenarioHost{newHost(t, []string{env.Mirror}, hostPluginConf(env))}
	}
	h := newHost(t, []string{env.Mirror}, "")
	installRPMs(t, h.root)
	h.pluginpath = filepath.Join(h.root, pluginDirInstalled)
	h.plugins = filepath.Join(h.root, "etc/dnf/plugins")
	usePackages(t, h.root, filepath.Join(h.plugins, "pkgtorrent.conf"), env.Service, h.state)
	return dnfScenarioHost{h}
}

func (dnfAdapter) MalformedConfs() (map[string]string, string) {
	return map[string]string{
		"line without equals sign": "[main]\nenabled = 1\nthis line is no setting\n",
		"no section header":        "enabled = 1\n",
		"enabled not a boolean":    "[main]\nenabled = maybe\n",
		"timeout not a number":     "[main]\nenabled = 1\ncommand = @GET@\nconfig = " + os.DevNull + "\ntimeout = soon\n",
	}, ""
}

func (dnfAdapter) Says(s string) string {
	switch s {
	case "service down":
		return "pkgtorrent: service unreachable"
	case "bad checksum":
		return "1 of 5 files not placed"
	case "malformed plugin conf":
		return "pkgtorrent: plugin disabled: "
	}
	return ""
}

type dnfScenarioHost struct{ h dnfHost }

func (d dnfScenarioHost) Install(t *testing.T) scenario.Outcome {
	start := time.Now()
	out, err := d.h.dnf(t, append([]string{"install"}, installArgs...)...)
	if strings.Contains(out, "Failed loading plugin") || strings.Contains(out, "Traceback") {
		t.Errorf("dnf did not load the plugin:\n%s", out)
	}
	if n := strings.Count(out, "pkgtorrent:"); n > 1 {
		t.Errorf("the plugin logged %d lines, want one at most:\n%s", n, out)
	}
	return scenario.Outcome{OK: err == nil, Output: out, Wall: time.Since(start)}
}

func (d dnfScenarioHost) Installed(t *testing.T) { d.h.installed(t) }
func (d dnfScenarioHost) Dir() string            { return d.h.dir }
func (d dnfScenarioHost) State() string          { return d.h.state }

// yumAdapter: the yum 3 plugin in its stand-in transaction.
type yumAdapter struct{}

var _ scenario.Adapter = yumAdapter{}

func (yumAdapter) Name() string                                   { return "yum stand-in" }
func (yumAdapter) Repo(t *testing.T) scenario.Repo                { return rpmRepo(t) }
func (yumAdapter) InstalledService(t *testing.T) (string, string) { return installedService(t) }

func (yumAdapter) NewHost(t *testing.T, env scenario.Env) scenario.Host {
	d := t.TempDir()
	os.Chmod(filepath.Dir(d), 0o755)
	os.Chmod(d, 0o755)
	h := yumHost{dir: d, state: filepath.Join(d, "state"), mirror: env.Mirror}
	e2e.HostAt(t, h.state)
	if !env.Packaged {
		h.conf = filepath.Join(d, "pkgtorrent.conf")
		conf := strings.ReplaceAll(strings.ReplaceAll(hostPluginConf(env), "@GET@", shared.get), "@STATE@", h.state)
		if err := os.WriteFile(h.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return h
	}
	root := filepath.Join(d, "root")
	installRPMs(t, root)
	h.pluginDir = filepath.Join(root, "usr/lib/yum-plugins")
	h.conf = filepath.Join(root, "etc/yum/pluginconf.d/pkgtorrent.conf")
	usePackages(t, root, h.conf, env.Service, h.state)
	return h
}

func (yumAdapter) MalformedConfs() (map[string]string, string) {
	// yum 3 parses plugin configs itself and stops on one it cannot parse,
	// before any plugin loads: only a bad value reaches the plugin.
	return map[string]string{
		"timeout not a number": "[main]\nenabled = 1\ncommand = @GET@\nconfig = " + os.DevNull + "\nstate_dir = @STATE@\ntimeout = soon\n",
	}, ""
}

func (yumAdapter) Says(s string) string {
	switch s {
	case "service down":
		return "pkgtorrent: service unreachable"
	case "bad checksum":
		return "1 of 5 files not placed"
	case "malformed plugin conf":
		return "pkgtorrent: "
	}
	return ""
}

// yumHost is a stand-in yum: its cache, the packages it installed, its
// plugin config and pkgtorrent state.
type yumHost struct {
	dir, state, conf, mirror string
	pluginDir                string // "": the checkout's
}

func (h yumHost) Install(t *testing.T) scenario.Outcome {
	script, err := filepath.Abs("../yum/yum_standin.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dnfPython, script, h.conf, h.mirror, filepath.Join(h.dir, "cache"), filepath.Join(h.dir, "installed"))
	cmd.Env = append(testkit.CleanEnv(), "PYTHONDONTWRITEBYTECODE=1")
	if h.pluginDir != "" {
		cmd.Env = append(cmd.Env, "PT_TEST_PLUGIN_DIR="+h.pluginDir)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if bytes.Contains(out, []byte("Traceback")) {
		t.Errorf("the stand-in yum raised:\n%s", out)
	}
	return scenario.Outcome{OK: err == nil, Output: string(out), Wall: time.Since(start)}
}

func (h yumHost) Installed(t *testing.T) {
	t.Helper()
	for _, p := range packages {
		same(t, filepath.Join(h.dir, "installed", rpmFile(p)), filepath.Join(shared.tree, "el", repoPath(p)))
	}
}

func (h yumHost) Dir() string   { return h.dir }
func (h yumHost) State() string { return h.state }
