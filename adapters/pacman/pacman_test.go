package pacman

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/batch"
	pmeta "github.com/pkgtorrent/pkgtorrent/core/metainfo"
)

var pacmanTools = []string{"pacman", "pacman-conf", "repo-add", "bsdtar", "bash"}

// getConf is a root's pkgtorrent.conf for a service URL.
func getConf(svc string, extra ...string) string {
	return fmt.Sprintf("service = %q\nstate-dir = \"@STATE@\"\npeer-host = \"127.0.0.1\"\nseed-time = \"2m\"\n", svc) +
		strings.Join(extra, "\n") + "\n"
}

// agentStatus reads the status of a root's agent.
func (r *pacRoot) agentStatus() map[string]float64 {
	r.t.Helper()
	get, _ := buildBinaries(r.t)
	out, err := exec.Command(get, "--config", "/dev/null", "--state-dir", r.state, "status", "--json").Output()
	if err != nil {
		r.t.Fatalf("status of %s: %v", r.state, err)
	}
	var m map[string]float64
	if err := json.Unmarshal(out, &m); err != nil {
		r.t.Fatalf("status: %v: %s", err, out)
	}
	return m
}

func sizeOf(pkgs []pkg, dir string, t testing.TB) int64 {
	var n int64
	for _, p := range pkgs {
		st, err := os.Stat(filepath.Join(dir, p.fileName()))
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// Three machines install the same packages at once from a rate-limited
// origin: one through the XferCommand, two through the batch script (one of
// them with the XferCommand configured as well). Root A's first Server is a
// path the mirror does not have, so every file fails there first: pacman
// must take pkgtorrent-get's exit status as a failed download and try its
// next server.
func TestThreeRoots(t *testing.T) {
	needTools(t, pacmanTools...)
	rp := buildRepo(t, 1, testPkgs)
	total := sizeOf(testPkgs, rp.dir, t)
	// The origin alone would need ~3 s per machine.
	svc := startService(t, rp.root, "--origin-rate-limit", fmt.Sprint(total/3))
	good := svc.url + "$repo/os/$arch"
	missing := svc.url + "missing/$repo/os/$arch"
	conf := getConf(svc.url)
	a := newRoot(t, []string{missing, good}, "@WRAP@ %u %o", conf)
	b := newRoot(t, []string{good}, "", conf)
	c := newRoot(t, []string{good}, "@GET@ %u %o", conf)

	runs := make([]run, 3)
	var wg sync.WaitGroup
	for i, f := range []func() run{
		func() run { return a.pacman("-Sy", "--noconfirm", "app") },
		func() run { return b.batch("-Sy", "--noconfirm", "app") },
		func() run {
			// C arrives a little later, as a fleet's cron jitter spreads
			// machines: it finds B in the swarm. (Hosts starting at the very
			// same moment all see an empty swarm and all take the mirror;
			// on a loaded test machine they may then finish before they
			// trade anything.)
			time.Sleep(1500 * time.Millisecond)
			return c.batch("-Sy", "--noconfirm", "app")
		},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = f()
		}()
	}
	wg.Wait()
	var fromPeers, fromWeb float64
	for i, r := range []*pacRoot{a, b, c} {
		if runs[i].code != 0 {
			t.Fatalf("root %c: exit %d\nstdout:\n%s\nstderr:\n%s", 'A'+i, runs[i].code, runs[i].stdout, runs[i].stderr)
		}
		r.checkInstalled(rp, testPkgs)
		if bad := r.logErrors(); len(bad) > 0 {
			t.Errorf("root %c: pacman's log reports %q", 'A'+i, bad)
		}
		st := r.agentStatus()
		t.Logf("root %c: agent got %.0f bytes from peers, %.0f from webseeds, uploaded %.0f", 'A'+i, st["from_peers"], st["from_webseed"], st["uploaded"])
		fromPeers += st["from_peers"]
		fromWeb += st["from_webseed"]
	}
	sent := svc.stats(t)["file_bytes_sent"]
	t.Logf("three roots installed %d package bytes each: %.0f bytes from peers, %.0f from webseeds; origin sent %.0f file bytes", total, fromPeers, fromWeb, sent)
	if fromPeers == 0 {
		t.Error("no bytes came from peers")
	}
	if sent >= float64(3*total) {
		t.Errorf("the origin sent %.0f bytes for three installs of %d", sent, total)
	}

	// What pacman handed the XferCommand of root A.
	b2, err := os.ReadFile(a.xferLog)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(b2)), "\n")
	t.Logf("root A XferCommand calls (exit status, %%u, %%o):\n%s", b2)
	want := map[string]bool{}
	for _, p := range testPkgs {
		want[p.fileName()] = true
	}
	var db, okPkgs, failed int
	for _, l := range calls {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("XferCommand got %d arguments: %q", len(f)-1, l)
		}
		code, u, o := f[0], f[1], f[2]
		name := u[strings.LastIndex(u, "/")+1:]
		if !strings.HasSuffix(o, "/"+name+".part") {
			t.Errorf("%%o = %s for %%u = %s: want <dir>/%s.part", o, u, name)
		}
		switch {
		case strings.Contains(u, "/missing/"):
			if code == "0" {
				t.Errorf("exit 0 for a file the mirror does not have: %s", u)
			}
			failed++
		case name == "core.db":
			if o != filepath.Join(a.db, "sync", "core.db.part") || code != "0" {
				t.Errorf("database: exit %s, %%o = %s", code, o)
			}
			db++
		case want[name]:
			if o != filepath.Join(a.cache, name+".part") || code != "0" {
				t.Errorf("package: exit %s, %%o = %s", code, o)
			}
			okPkgs++
		default:
			t.Errorf("unexpected XferCommand call %q", l)
		}
	}
	if db != 1 || okPkgs != len(testPkgs) || failed != len(testPkgs)+1 {
		t.Errorf("XferCommand calls: %d database, %d packages, %d failed on the first server; want 1, %d, %d", db, okPkgs, failed, len(testPkgs), len(testPkgs)+1)
	}
}

// With the service down, the XferCommand install still succeeds (plain HTTP
// fallback from the mirror pacman named) and pacman's log shows no error;
// the batch script's install too (pacman's own download).
func TestServiceDown(t *testing.T) {
	needTools(t, pacmanTools...)
	rp := buildRepo(t, 2, testPkgs)
	mirror := plainMirror(t, rp.root)
	dead := deadURL(t)
	conf := getConf(dead, fmt.Sprintf("mirror = [%q]", mirror), `connect-timeout = "1s"`)
	servers := []string{mirror + "$repo/os/$arch"}

	x := newRoot(t, servers, "@GET@ %u %o", conf)
	r := x.pacman("-Sy", "--noconfirm", "app")
	if r.code != 0 {
		t.Fatalf("XferCommand install: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	x.checkInstalled(rp, testPkgs)
	if bad := x.logErrors(); len(bad) > 0 {
		t.Errorf("pacman's log reports %q", bad)
	}
	if n := strings.Count(r.stderr, "downloading over plain HTTP"); n != len(testPkgs) {
		t.Errorf("%d fallback notices on stderr, want one per package (%d):\n%s", n, len(testPkgs), r.stderr)
	}

	bt := newRoot(t, servers, "", conf)
	r = bt.batch("-Sy", "--noconfirm", "app")
	if r.code != 0 {
		t.Fatalf("batch install: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	bt.checkInstalled(rp, testPkgs)
	if bad := bt.logErrors(); len(bad) > 0 {
		t.Errorf("pacman's log reports %q", bad)
	}
	if !strings.Contains(r.stderr, "pkgtorrent-pacman: batch fetch failed; pacman downloads on its own") {
		t.Errorf("no notice of the failed batch on stderr:\n%s", r.stderr)
	}
}

// A package whose bytes on the mirror are corrupted: pacman reports the
// failure as it does with curl as its XferCommand, and nothing corrupt is
// left in the cache under the package's final name.
func TestCorruptPackage(t *testing.T) {
	needTools(t, append(pacmanTools, "curl")...)
	rp := buildRepo(t, 3, testPkgs)
	bad := testPkgs[1].fileName()
	p := filepath.Join(rp.dir, bad)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	write(t, p, b)
	svc := startService(t, rp.root)
	servers := []string{svc.url + "$repo/os/$arch"}
	conf := getConf(svc.url)

	ref := newRoot(t, servers, "/usr/bin/curl -sSfo %o %u", conf)
	want := ref.pacman("-Sy", "--noconfirm", "app")
	if want.code == 0 {
		t.Fatal("pacman with curl installed a corrupt package")
	}
	wantErr := ref.failure(want)
	t.Logf("pacman with curl: exit %d, %q", want.code, wantErr)
	if len(wantErr) == 0 || !strings.Contains(strings.Join(wantErr, "\n"), bad) {
		t.Fatalf("pacman with curl does not name %s in its errors: %q", bad, wantErr)
	}

	for _, mode := range []string{"xfer", "batch"} {
		t.Run(mode, func(t *testing.T) {
			var r *pacRoot
			var got run
			if mode == "xfer" {
				r = newRoot(t, servers, "@GET@ %u %o", conf)
				got = r.pacman("-Sy", "--noconfirm", "app")
			} else {
				r = newRoot(t, servers, "", conf)
				got = r.batch("-Sy", "--noconfirm", "app")
			}
			if got.code != want.code {
				t.Errorf("exit %d, pacman with curl exits %d\n%s", got.code, want.code, got.stderr)
			}
			if g := r.failure(got); !slices.Equal(g, wantErr) {
				t.Errorf("errors %q, pacman with curl says %q", g, wantErr)
			}
			if slices.Contains(r.cacheEntries(), bad) {
				t.Errorf("the corrupt %s is in the cache", bad)
			}
			if mode == "batch" && !strings.Contains(got.stderr, "sha256") {
				t.Errorf("pkgtorrent-get did not report the sha256 mismatch:\n%s", got.stderr)
			}
		})
	}
}

// failure is how pacman reported a failed run: its "error:" lines and the
// lines naming a corrupted file, with this root's directory as "@".
func (r *pacRoot) failure(res run) []string {
	var out []string
	for _, l := range strings.Split(res.stdout+"\n"+res.stderr, "\n") {
		if strings.HasPrefix(l, "error:") || strings.Contains(l, "corrupted") {
			out = append(out, strings.ReplaceAll(l, r.dir, "@"))
		}
	}
	return out
}

// The service's --mirrorlist: each Server line, cut before $repo, is a
// mirror base of the tree root in every torrent.
func TestServiceMirrorlist(t *testing.T) {
	needTools(t, pacmanTools...)
	rp := buildRepo(t, 4, testPkgs[:1])
	ml := filepath.Join(t.TempDir(), "mirrorlist")
	write(t, ml, []byte("# test\nServer = http://127.0.0.1:9/archlinux/$repo/os/$arch\nServer = https://m.example/$repo/os/$arch\n"))
	svc := startService(t, rp.root, "--mirrorlist", ml, "--mirror", "http://127.0.0.1:9/other/")
	rel := "core/os/" + repoArch + "/" + testPkgs[0].fileName()
	digest, err := batch.Digest([]string{rel})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string][]string{"files": {rel}})
	resp, err := http.Post(svc.url+".pkgtorrent/v1/torrent/"+digest, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tb bytes.Buffer
	tb.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST torrent: %d %s", resp.StatusCode, tb.String())
	}
	_, _, mirrors, err := pmeta.Parse(tb.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://127.0.0.1:9/other/", "http://127.0.0.1:9/archlinux/", "https://m.example/"}
	if !slices.Equal(mirrors, want) {
		t.Fatalf("torrent mirrors %q, want %q", mirrors, want)
	}
}

// The batch script finds DBPath and CacheDir through pacman-conf when only
// --config is given, passes other operations to pacman unchanged, and runs
// pacman when there is nothing to download.
func TestBatchArguments(t *testing.T) {
	needTools(t, pacmanTools...)
	rp := buildRepo(t, 5, testPkgs)
	svc := startService(t, rp.root)
	r := newRoot(t, []string{svc.url + "$repo/os/$arch"}, "", getConf(svc.url))
	script, err := filepath.Abs("pkgtorrent-pacman")
	if err != nil {
		t.Fatal(err)
	}
	res := r.exec("bash", script, "--config", r.conf, "-Sy", "--noconfirm", "app")
	if res.code != 0 || strings.Contains(res.stderr, "pkgtorrent-pacman:") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	r.checkInstalled(rp, testPkgs)
	if st := r.agentStatus(); st["from_webseed"]+st["from_peers"] < float64(sizeOf(testPkgs, rp.dir, t)) {
		t.Errorf("the agent fetched %.0f bytes, less than the packages: pacman downloaded them itself", st["from_webseed"]+st["from_peers"])
	}
	want := r.pacman("-Q")
	got := r.exec("bash", script, "--config", r.conf, "-Q")
	if got.code != 0 || got.stdout != want.stdout || !strings.Contains(got.stdout, "big 5.1-1") {
		t.Errorf("-Q through the script: exit %d, %q; pacman says %q", got.code, got.stdout, want.stdout)
	}
	res = r.batch("-S", "--needed", "--noconfirm", "app")
	if res.code != 0 || !strings.Contains(res.stdout+res.stderr, "there is nothing to do") {
		t.Errorf("-S --needed of installed packages: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	// An upgrade: new versions of two packages, fetched as one batch by
	// -Syu.
	up := []pkg{
		{name: "libbar", version: "1:0.9-3", deps: []string{"base-lib>=1.0"}, size: 70_001},
		{name: "big", version: "5.2-1", deps: []string{"libfoo"}, size: 1_000_000},
	}
	rp.add(t, 6, up)
	before := r.agentStatus()
	res = r.batch("-Syu", "--noconfirm")
	if res.code != 0 || strings.Contains(res.stderr, "pkgtorrent-pacman:") {
		t.Fatalf("-Syu: exit %d\n%s", res.code, res.stderr)
	}
	after := r.agentStatus()
	if got, want := after["from_webseed"]+after["from_peers"]-before["from_webseed"]-before["from_peers"], float64(sizeOf(up, rp.dir, t)); got < want {
		t.Errorf("the agent fetched %.0f bytes for the upgrade, want at least %.0f", got, want)
	}
	for _, p := range up {
		if _, err := os.Stat(filepath.Join(r.cache, p.fileName())); err != nil {
			t.Errorf("upgrade %s not in the cache: %v", p.fileName(), err)
		}
		got, err := os.ReadFile(filepath.Join(r.root, "usr", "share", p.name, "data"))
		if err != nil || !bytes.Equal(got, rp.data[p.name]) {
			t.Errorf("%s: upgraded data wrong (%v)", p.name, err)
		}
	}
	q := r.pacman("-Q", "libbar", "big")
	if q.stdout != "libbar 1:0.9-3\nbig 5.2-1\n" {
		t.Errorf("after -Syu, pacman -Q says %q", q.stdout)
	}
}

// The batch script is clean for shellcheck.
func TestShellcheck(t *testing.T) {
	needTools(t, "shellcheck")
	if out, err := exec.Command("shellcheck", "pkgtorrent-pacman").CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}
