package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/packaging/dist"
)

// want is what each package must hold, written out here independently of
// packages(): a path dropped from the definitions fails the test.
var want = map[string]struct {
	formats []string
	files   []string
	configs []string // config files (deb conffiles, rpm %config, Arch backup)
	depends []string
	sources []string // files of the tree the package needs (adapters)
}{
	"pkgtorrent": {
		formats: []string{"deb", "rpm", "archlinux"},
		files: []string{
			"/usr/bin/pkgtorrent-get",
			"/usr/lib/pkgtorrent/pkgtorrent-agent",
			"/usr/lib/systemd/system/pkgtorrent-agent.service",
			"/usr/lib/sysusers.d/pkgtorrent.conf",
			"/etc/pkgtorrent/pkgtorrent.conf",
			"/usr/share/man/man1/pkgtorrent-get.1.gz",
			"/usr/share/man/man5/pkgtorrent.conf.5.gz",
			"/usr/share/doc/pkgtorrent/README.md",
		},
		configs: []string{"/etc/pkgtorrent/pkgtorrent.conf"},
	},
	"pkgtorrent-service": {
		formats: []string{"deb", "rpm", "archlinux"},
		files: []string{
			"/usr/bin/pkgtorrent-service",
			"/usr/lib/systemd/system/pkgtorrent-service.service",
			"/etc/pkgtorrent/pkgtorrent-service.conf",
			"/usr/share/man/man8/pkgtorrent-service.8.gz",
			"/usr/share/man/man5/pkgtorrent-service.conf.5.gz",
		},
		configs: []string{"/etc/pkgtorrent/pkgtorrent-service.conf"},
	},
	"yum-plugin-pkgtorrent": {
		formats: []string{"rpm"},
		files:   []string{"/usr/lib/yum-plugins/pkgtorrent.py", "/usr/lib/yum-plugins/pkgtorrent_batch.py", "/etc/yum/pluginconf.d/pkgtorrent.conf"},
		configs: []string{"/etc/yum/pluginconf.d/pkgtorrent.conf"},
		depends: []string{"pkgtorrent"},
		sources: []string{"adapters/yum/pkgtorrent.py", "adapters/common/pkgtorrent_batch.py", "adapters/yum/pkgtorrent.conf"},
	},
	"python3-dnf-plugin-pkgtorrent": {
		formats: []string{"rpm"},
		files:   []string{DefaultDNFPluginDir + "/pkgtorrent.py", DefaultDNFPluginDir + "/pkgtorrent_batch.py", "/etc/dnf/plugins/pkgtorrent.conf"},
		configs: []string{"/etc/dnf/plugins/pkgtorrent.conf"},
		depends: []string{"pkgtorrent"},
		sources: []string{"adapters/dnf/pkgtorrent.py", "adapters/common/pkgtorrent_batch.py", "adapters/dnf/pkgtorrent.conf"},
	},
	"pkgtorrent-pacman": {
		formats: []string{"archlinux"},
		files:   []string{"/usr/bin/pkgtorrent-pacman"},
		depends: []string{"pkgtorrent"},
		sources: []string{"adapters/pacman/pkgtorrent-pacman"},
	},
}

// corePackages must always be built: the test never passes without them.
var corePackages = []string{"pkgtorrent", "pkgtorrent-service"}

type builtPackages struct {
	pkgs  []Built
	notes []string
}

var built testkit.Once[builtPackages]

// buildAll builds the packages once per test binary, with the packaging
// command (go run, as a user would; Build in this test binary would run
// under the race detector, which makes nfpm's compression minutes slower).
func buildAll(t *testing.T) []Built {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the packages")
	}
	b := built.Get(t, func() (builtPackages, error) {
		dir, err := testkit.SharedDir("pkgtorrent-dist-")
		if err != nil {
			return builtPackages{}, err
		}
		var b builtPackages
		pkgs, notes, err := dist.Build("..", dir)
		for _, p := range pkgs {
			b.pkgs = append(b.pkgs, Built{Package: p.Name, Format: p.Format, Path: p.Path})
		}
		b.notes = notes
		return b, err
	})
	for _, n := range b.notes {
		t.Log(n)
	}
	return b.pkgs
}

func TestMain(m *testing.M) { testkit.Main(m) }

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// rpmPayload lists the payload of an rpm: rpm2cpio, then bsdtar.
func rpmPayload(t *testing.T, rpm string) string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "payload.cpio"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := exec.Command("rpm2cpio", rpm)
	var stderr bytes.Buffer
	c.Stdout, c.Stderr = f, &stderr
	if err := c.Run(); err != nil {
		// rpm2cpio 4.18 exits 1 when the bytes it copied differ from the
		// payload size in the signature header. nfpm's rpm writer
		// (google/rpmpack) puts the sum of the file sizes there, not the
		// size of the cpio archive (entry headers and trailer included):
		// accept that quirk, and only that, as long as the archive reads.
		sizes := strings.Fields(output(t, "rpm", "-qp", "--qf", "%{ARCHIVESIZE} %{SIZE}", rpm))
		if len(sizes) != 2 || sizes[0] != sizes[1] || stderr.Len() > 0 {
			t.Fatalf("rpm2cpio %s: %v\n%s", rpm, err, stderr.String())
		}
		t.Logf("rpm2cpio %s: exit status 1: the header's ARCHIVESIZE (%s) counts file bytes only (rpmpack)", filepath.Base(rpm), sizes[0])
	}
	return output(t, "bsdtar", "-tf", f.Name())
}

// fileList normalizes an archive listing: absolute paths of the entries
// that are not directories holding wanted files nor package metadata.
func fileList(lines []string, wantFiles []string) []string {
	dirs := map[string]bool{}
	for _, f := range wantFiles {
		for d := filepath.Dir(f); d != "/"; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var out []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || l == "." || l == "./" {
			continue
		}
		p := "/" + strings.TrimPrefix(strings.TrimPrefix(l, "./"), "/")
		p = strings.TrimSuffix(p, "/")
		if dirs[p] || slices.Contains([]string{"/.PKGINFO", "/.MTREE", "/.INSTALL", "/.BUILDINFO"}, p) {
			continue
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Errorf("%s holds\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(w, "\n  "))
	}
}

func TestPackageContents(t *testing.T) {
	pkgs := buildAll(t)
	byName := map[string][]Built{}
	for _, b := range pkgs {
		byName[b.Package] = append(byName[b.Package], b)
	}
	for _, name := range corePackages {
		if len(byName[name]) != len(want[name].formats) {
			t.Fatalf("core package %s was built as %v, want formats %v", name, byName[name], want[name].formats)
		}
	}
	for name, w := range want {
		present := true
		for _, s := range w.sources {
			if _, err := os.Stat(filepath.Join("..", s)); err != nil {
				present = false
			}
		}
		if !present {
			if len(byName[name]) != 0 {
				t.Errorf("%s was built without its sources %v", name, w.sources)
			}
			t.Logf("%s: sources %v not in this tree, package not built (checked when they are)", name, w.sources)
			continue
		}
		var formats []string
		for _, b := range byName[name] {
			formats = append(formats, b.Format)
			t.Run(filepath.Base(b.Path), func(t *testing.T) { checkPackage(t, b, w.files, w.configs, w.depends) })
		}
		if !slices.Equal(formats, w.formats) {
			t.Errorf("%s built as %v, want %v", name, formats, w.formats)
		}
	}
}

func checkPackage(t *testing.T, b Built, files, configs, depends []string) {
	switch b.Format {
	case "deb":
		testkit.NeedTool(t, "dpkg-deb")
		var names []string
		for _, l := range strings.Split(output(t, "dpkg-deb", "-c", b.Path), "\n") {
			if f := strings.Fields(l); len(f) >= 6 {
				names = append(names, f[5])
				if strings.HasPrefix(f[5], "./usr/bin/") && !strings.HasSuffix(f[5], "/") && f[0] != "-rwxr-xr-x" {
					t.Errorf("%s: mode %s", f[5], f[0])
				}
			}
		}
		sameList(t, "deb", fileList(names, files), files)
		conf := output(t, "dpkg-deb", "-I", b.Path, "conffiles")
		sameList(t, "deb conffiles", fileList(strings.Split(conf, "\n"), nil), configs)
		dep := strings.TrimSpace(output(t, "dpkg-deb", "-f", b.Path, "Depends"))
		for _, d := range depends {
			if !strings.Contains(dep, d) {
				t.Errorf("Depends %q lacks %s", dep, d)
			}
		}
	case "rpm":
		testkit.NeedTool(t, "rpm")
		testkit.NeedTool(t, "rpm2cpio")
		testkit.NeedTool(t, "bsdtar")
		sameList(t, "rpm -qlp", fileList(strings.Split(output(t, "rpm", "-qlp", b.Path), "\n"), files), files)
		cpio := rpmPayload(t, b.Path)
		sameList(t, "rpm2cpio payload", fileList(strings.Split(cpio, "\n"), files), files)
		sameList(t, "rpm %config", fileList(strings.Split(output(t, "rpm", "-qp", "--configfiles", b.Path), "\n"), nil), configs)
		req := output(t, "rpm", "-qp", "--requires", b.Path)
		for _, d := range depends {
			if !slices.Contains(strings.Split(req, "\n"), d) {
				t.Errorf("rpm requires %q lacks %s", req, d)
			}
		}
	case "archlinux":
		testkit.NeedTool(t, "bsdtar")
		var names []string
		for _, l := range strings.Split(output(t, "bsdtar", "-tvf", b.Path), "\n") {
			if f := strings.Fields(l); len(f) >= 9 {
				names = append(names, f[8])
				if strings.HasPrefix(f[8], "usr/bin/") && !strings.HasSuffix(f[8], "/") && f[0] != "-rwxr-xr-x" {
					t.Errorf("%s: mode %s", f[8], f[0])
				}
			}
		}
		sameList(t, "Arch package", fileList(names, files), files)
		info := output(t, "bsdtar", "-xOf", b.Path, ".PKGINFO")
		var backup, deps []string
		sc := bufio.NewScanner(strings.NewReader(info))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "backup = "); ok {
				backup = append(backup, "/"+v)
			}
			if v, ok := strings.CutPrefix(sc.Text(), "depend = "); ok {
				deps = append(deps, v)
			}
		}
		slices.Sort(backup)
		sameList(t, ".PKGINFO backup", backup, configs)
		for _, d := range depends {
			if !slices.Contains(deps, d) {
				t.Errorf(".PKGINFO depends %v lack %s", deps, d)
			}
		}
	default:
		t.Fatalf("unknown format %s", b.Format)
	}
	if b.Package == "pkgtorrent" {
		// The agent's user is made by the install script in every format.
		var scripts string
		switch b.Format {
		case "deb":
			scripts = output(t, "dpkg-deb", "-I", b.Path, "postinst")
		case "rpm":
			scripts = output(t, "rpm", "-qp", "--scripts", b.Path)
		case "archlinux":
			scripts = output(t, "bsdtar", "-xOf", b.Path, ".INSTALL")
		}
		if !strings.Contains(scripts, "useradd --system") {
			t.Errorf("%s: no install script creating the pkgtorrent user:\n%s", b.Format, scripts)
		}
	}
}

// TestInstallDeb installs the .deb packages on this (Debian) machine, checks
// files, units, the user and the agent's command line as that user, and
// purges them again. It needs root.
func TestInstallDeb(t *testing.T) {
	testkit.NeedRoot(t, "installing packages")
	testkit.NeedTool(t, "dpkg")
	aptGet := testkit.NeedTool(t, "apt-get")
	if exec.Command("dpkg", "-s", "pkgtorrent").Run() == nil || exec.Command("dpkg", "-s", "pkgtorrent-service").Run() == nil {
		t.Skip("pkgtorrent is already installed on this machine; not touching it")
	}
	var debs []string
	for _, b := range buildAll(t) {
		if b.Format == "deb" {
			debs = append(debs, b.Path)
		}
	}
	if len(debs) != 2 {
		t.Fatalf("built debs %v, want pkgtorrent and pkgtorrent-service", debs)
	}
	apt := func(args ...string) {
		t.Helper()
		cmd := exec.Command(aptGet, append([]string{"-o", "DPkg::Lock::Timeout=600", "-y", "-q", "--no-install-recommends"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// An agent user made before (by .ci/run, or an admin) is kept as it is.
	userBefore := exec.Command("getent", "passwd", "pkgtorrent").Run() == nil
	apt(append([]string{"install"}, debs...)...)
	t.Cleanup(func() {
		apt("purge", "pkgtorrent", "pkgtorrent-service")
		for _, p := range []string{"/usr/bin/pkgtorrent-get", "/usr/lib/pkgtorrent/pkgtorrent-agent", "/usr/bin/pkgtorrent-service", "/var/cache/pkgtorrent", "/etc/pkgtorrent/pkgtorrent.conf"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s is still there after purge", p)
			}
		}
	})
	for _, name := range corePackages {
		for _, f := range want[name].files {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("installed %s: %v", name, err)
			}
		}
	}
	// The agent's system user and its directory.
	pw := strings.Split(strings.TrimSpace(output(t, "getent", "passwd", "pkgtorrent")), ":")
	if len(pw) != 7 || !strings.HasSuffix(pw[6], "nologin") || (!userBefore && pw[5] != "/var/cache/pkgtorrent") {
		t.Errorf("user pkgtorrent: %q", pw)
	}
	if owner := strings.TrimSpace(output(t, "stat", "-c", "%U:%G %a", "/var/cache/pkgtorrent")); owner != "pkgtorrent:pkgtorrent 755" {
		t.Errorf("/var/cache/pkgtorrent is %s", owner)
	}
	// The units.
	analyze := testkit.NeedTool(t, "systemd-analyze")
	manFlag := "--man=no" // the page check needs man(1), which is optional
	if _, err := exec.LookPath("man"); err == nil {
		manFlag = "--man=yes"
	}
	for _, unit := range []string{"pkgtorrent-agent.service", "pkgtorrent-service.service"} {
		out, err := exec.Command(analyze, "verify", manFlag, "/usr/lib/systemd/system/"+unit).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
	// The shipped configs parse; the client's names the host agent.
	out, _ := exec.Command("/usr/bin/pkgtorrent-service", "--config", "/etc/pkgtorrent/pkgtorrent-service.conf").CombinedOutput()
	if !strings.Contains(string(out), "no root directory configured") {
		t.Errorf("pkgtorrent-service with the shipped config: %s", out)
	}
	// The agent as the unit runs it: as pkgtorrent, in /var/cache/pkgtorrent.
	unit, err := os.ReadFile("/usr/lib/systemd/system/pkgtorrent-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	var execStart []string
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	if len(execStart) == 0 {
		t.Fatal("no ExecStart in the agent unit")
	}
	args := append([]string{"-u", "pkgtorrent", "--"}, execStart...)
	agent := exec.Command("runuser", append(args, "--peer-host", "127.0.0.1")...)
	var agentLog bytes.Buffer
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		exec.Command("/usr/bin/pkgtorrent-get", "--config", "/etc/pkgtorrent/pkgtorrent.conf", "stop").Run()
		done := make(chan struct{})
		go func() { agent.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			agent.Process.Kill()
			<-done
			t.Error("agent did not stop")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	}()
	var status string
	testkit.Poll(30*time.Second, func() bool {
		// As root, with the shipped config: it names the host agent.
		b, err := exec.Command("/usr/bin/pkgtorrent-get", "--config", "/etc/pkgtorrent/pkgtorrent.conf", "status", "--json").Output()
		status = string(b)
		return err == nil
	})
	if !strings.Contains(status, `"pid"`) {
		t.Fatalf("no status from the agent run as pkgtorrent: %q", status)
	}
	if owner := strings.TrimSpace(output(t, "stat", "-c", "%U", "/var/cache/pkgtorrent/agent.sock")); owner != "pkgtorrent" {
		t.Errorf("agent socket owned by %s, want pkgtorrent", owner)
	}
	fetchInstalled(t)
}

// fetchInstalled fetches a file with the installed binaries: the installed
// pkgtorrent-service over a temporary tree, the installed pkgtorrent-get
// with the shipped config, through the host's agent.
func fetchInstalled(t *testing.T) {
	t.Helper()
	tree := t.TempDir()
	data := testkit.RandBytes(3<<20, 1)
	if err := os.WriteFile(filepath.Join(tree, "demo-1.0.rpm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	url := testkit.StartServiceBin(t, "/usr/bin/pkgtorrent-service", tree)
	dst := filepath.Join(t.TempDir(), "demo-1.0.rpm")
	out := output(t, "/usr/bin/pkgtorrent-get", "--config", "/etc/pkgtorrent/pkgtorrent.conf", "--service", url, "--json", "--quiet", url+"demo-1.0.rpm", dst)
	var sum struct {
		Files    int   `json:"files"`
		Webseed  int64 `json:"bytes_from_webseed"`
		Peers    int64 `json:"bytes_from_peers"`
		Received int64 `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &sum); err != nil {
		t.Fatalf("pkgtorrent-get --json: %v: %q", err, out)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched file differs (%v)", err)
	}
	if sum.Files != 1 || sum.Webseed+sum.Peers != int64(len(data)) {
		t.Errorf("installed pkgtorrent-get: %s, want 1 file of %d bytes through the agent", out, len(data))
	}
}
