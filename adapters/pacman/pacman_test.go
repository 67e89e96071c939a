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
	"testing"

	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

var pacmanTools = []string{"pacman", "pacman-conf", "repo-add", "bsdtar", "bash"}

// getConf is a root's pkgtorrent.conf for a service URL. A generous peer
// grace: on a loaded test machine (the race detector, CI) connecting to the
// seeding peer can take longer than the 1 s default.
func getConf(svc string, extra ...string) string {
	return fmt.Sprintf("service = %q\nstate-dir = \"@STATE@\"\npeer-host = \"127.0.0.1\"\nseed-time = \"2m\"\npeer-grace = \"5s\"\n", svc) +
		strings.Join(extra, "\n") + "\n"
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

// What pacman hands the XferCommand: root A's first Server is a path the
// service does not have, so every file fails there first, and pacman must
// take pkgtorrent-get's exit status as a failed download and try its next
// server; %o is the destination plus .part, the database's in DBPath/sync,
// the packages' in CacheDir. (The scenarios of every adapter, hosts
// sharing among them, are in scenarios_test.go.)
func TestXferCommandCalls(t *testing.T) {
	needTools(t, pacmanTools...)
	rp := buildRepo(t, 1, testPkgs)
	svc := startService(t, rp.root)
	a := newRoot(t, []string{svc.url + "missing/$repo/os/$arch", svc.url + "$repo/os/$arch"}, "@WRAP@ %u %o", getConf(svc.url))
	if res := a.pacman("-Sy", "--noconfirm", "app"); res.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	a.checkInstalled(rp, testPkgs)
	if bad := a.logErrors(); len(bad) > 0 {
		t.Errorf("pacman's log reports %q", bad)
	}
	b2, err := os.ReadFile(a.xferLog)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(b2)), "\n")
	t.Logf("XferCommand calls (exit status, %%u, %%o):\n%s", b2)
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
	_, _, mirrors, err := torrentfile.Parse(tb.Bytes())
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
	if st := r.host.Status(); st["from_webseed"]+st["from_peers"] < float64(sizeOf(testPkgs, rp.dir, t)) {
		t.Errorf("the agent fetched %.0f bytes, less than the packages: pacman downloaded them itself", st["from_webseed"]+st["from_peers"])
	}
	want := r.pacman("-Q")
	got := r.exec("bash", script, "--config", r.conf, "-Q")
	if got.code != 0 || got.stdout != want.stdout || !strings.Contains(got.stdout, "big 5.1-1") {
		t.Errorf("-Q through the script: exit %d, %q; pacman says %q", got.code, got.stdout, want.stdout)
	}
	// Nothing to download: the pkgtorrent-get started beside the listing
	// is stopped without a word.
	res = r.batch("-S", "--needed", "--noconfirm", "app")
	if res.code != 0 || !strings.Contains(res.stdout+res.stderr, "there is nothing to do") || strings.Contains(res.stderr, "pkgtorrent-get") {
		t.Errorf("-S --needed of installed packages: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	// An upgrade: new versions of two packages, fetched as one batch by
	// -Syu.
	up := []pkg{
		{name: "libbar", version: "1:0.9-3", deps: []string{"base-lib>=1.0"}, size: 70_001},
		{name: "big", version: "5.2-1", deps: []string{"libfoo"}, size: 1_000_000},
	}
	rp.add(t, 6, up)
	before := r.host.Status()
	// pacman through a wrapper that logs its arguments: the listing
	// refreshes the databases, the transaction uses them as listed.
	calls := filepath.Join(t.TempDir(), "calls")
	wrapper := filepath.Join(t.TempDir(), "pacman")
	write(t, wrapper, []byte("#!/bin/bash\nprintf '%s\\n' \"$*\" >> "+calls+"\nexec pacman \"$@\"\n"))
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	r.env = append(r.env, "PACMAN="+wrapper)
	res = r.batch("-Syu", "--noconfirm")
	r.env = r.env[:len(r.env)-1]
	if res.code != 0 || strings.Contains(res.stderr, "pkgtorrent-pacman:") {
		t.Fatalf("-Syu: exit %d\n%s", res.code, res.stderr)
	}
	if b, err := os.ReadFile(calls); err != nil {
		t.Error(err)
	} else if l := strings.Split(strings.TrimSpace(string(b)), "\n"); len(l) != 2 ||
		!strings.Contains(" "+l[0]+" ", " -Syu ") || !strings.Contains(l[0], "--print") ||
		!strings.Contains(" "+l[1]+" ", " -Su ") || strings.Contains(l[1], "--print") {
		t.Errorf("pacman calls: %q, want the listing with -Syu --print, then the transaction with -Su", l)
	}
	after := r.host.Status()
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

// A pkgtorrent-get that exits before it reads the batch (a bad setting)
// leaves the downloads to pacman: the script is not killed by writing the
// batch to it, and pacman installs.
func TestBatchGetFails(t *testing.T) {
	needTools(t, pacmanTools...)
	rp := buildRepo(t, 7, testPkgs)
	svc := startService(t, rp.root)
	r := newRoot(t, []string{svc.url + "$repo/os/$arch"}, "", getConf(svc.url))
	r.env = append(r.env, "PKGTORRENT_GET_ARGS=--no-such-setting")
	res := r.batch("-Sy", "--noconfirm", "app")
	if res.code != 0 || !strings.Contains(res.stderr, "unknown flag: --no-such-setting") ||
		!strings.Contains(res.stderr, "pkgtorrent-pacman: batch fetch failed; pacman downloads on its own") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	r.checkInstalled(rp, testPkgs)
}

// The batch script is clean for shellcheck.
func TestShellcheck(t *testing.T) {
	needTools(t, "shellcheck")
	if out, err := exec.Command("shellcheck", "pkgtorrent-pacman").CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}
