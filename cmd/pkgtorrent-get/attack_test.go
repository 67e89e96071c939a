package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	ametainfo "github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// The local attacks of issue 12, as regression tests: the agent user (who
// owns the state directory) against root, and another local user against
// root's agent. They need root, the agent user "pkgtorrent" and "nobody".

// agentIDs returns the uid and gid of the agent user and of nobody, skipping
// the test when not root (or failing under CI when a user is missing).
func agentIDs(t *testing.T) (agentUID, agentGID, nobodyUID, nobodyGID int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the privilege separation applies when pkgtorrent-get runs as root")
	}
	ids := func(name string) (int, int) {
		u, err := user.Lookup(name)
		if err != nil {
			testkit.Missing(t, "user %s: %v", name, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return uid, gid
	}
	agentUID, agentGID = ids("pkgtorrent")
	nobodyUID, nobodyGID = ids("nobody")
	return
}

// The agent user plants symlinks in its state directory (agent.log to a
// file of root's, data to a directory of root's): root's pkgtorrent-get
// neither opens, nor creates, nor chowns anything through them. Before the
// fix, root opened STATE/agent.log following the link and chowned its
// target to the agent user.
func TestAttackStateDirSymlinks(t *testing.T) {
	uid, gid, _, _ := agentIDs(t)
	root := t.TempDir()
	makeTree(t, root, 40, map[string]int{"os/a.rpm": 70_000})
	svc := startService(t, root)
	h := e2e.NewHost(t)
	if err := os.Chown(h.State, uid, gid); err != nil {
		t.Fatal(err)
	}
	victimDir := t.TempDir()
	victim := filepath.Join(victimDir, "shadow")
	if err := os.WriteFile(victim, []byte("root's secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rootDir := t.TempDir()
	for link, target := range map[string]string{"agent.log": victim, "data": rootDir} {
		if err := os.Symlink(target, filepath.Join(h.State, link)); err != nil {
			t.Fatal(err)
		}
		os.Lchown(filepath.Join(h.State, link), uid, gid)
	}
	dir := t.TempDir()
	r := h.Get(batchList(t, svc, root, dir, []string{"os/a.rpm"}), "--service", svc.url, "--connect-timeout", "2s", "--batch", "-")
	t.Logf("exit %d, fallback %v: %s", r.Code, r.Fallback, r.Stderr)
	for _, p := range []string{victim, rootDir} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s now belongs to %d:%d, was root's", p, st.Uid, st.Gid)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "root's secret\n" {
		t.Errorf("root's file changed: %q", b)
	}
	if es, _ := os.ReadDir(rootDir); len(es) != 0 {
		t.Errorf("root's directory got %d entries", len(es))
	}
	// The state directory is still the agent's.
	fi, err := os.Lstat(h.State)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
		t.Errorf("state directory now belongs to uid %d", st.Uid)
	}
}

// socketClient is a client of the agent's socket run as another local user:
// it connects, sends its standard input (or argv[2] bytes of 'x' with no
// newline), and prints the agent's replies up to the first that is not
// progress; "EACCES" when it may not connect.
const socketClient = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
data = sys.stdin.buffer.read() if len(sys.argv) < 3 else b"x" * int(sys.argv[2])
try:
    s.sendall(data)
except OSError:
    pass
for line in s.makefile("rb"):
    print(line.decode().strip(), flush=True)
    if json.loads(line).get("type") != "progress":
        break
`

// asUser runs socketClient as uid:gid (no supplementary groups) and returns
// its output.
func asUser(t *testing.T, uid, gid int, sock string, stdin []byte, extra ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", socketClient, sock}, extra...)...)
	cmd.Env = testkit.CleanEnv()
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("socket client as %d:%d: %v\n%s", uid, gid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// requestLine is one agent request as the socket carries it.
func requestLine(t *testing.T, req control.Request) []byte {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// Another local user against root's agent. Outside the agent's group it
// cannot connect at all (the socket was 0666: anyone could stop the agent,
// make it GET any URL, and store and seed what they chose). In the group
// (how an admin lets a user in) it may fetch what the configured service
// vouches for, but not stop the agent, not name another webseed, tracker
// or mirror, and not send an unbounded request.
func TestAttackAgentSocket(t *testing.T) {
	_, agentGID, nobody, nogroup := agentIDs(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		testkit.Missing(t, "%v", err)
	}
	root := t.TempDir()
	files := map[string]int{"os/a.rpm": 200_000, "os/b.rpm": 30_000}
	makeTree(t, root, 41, files)
	svc := startService(t, root)
	h := e2e.NewHost(t)
	b := names(files, "")
	if r := h.Get(batchList(t, svc, root, t.TempDir(), b), "--service", svc.url, "--http-fallback=false", "--batch", "-"); r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	if fi, err := os.Stat(h.State); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("state directory: %v, %v; want mode 0750", fi.Mode().Perm(), err)
	}
	sock := control.SocketPath(h.State)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || int(st.Gid) != agentGID {
		t.Errorf("agent socket: mode %v, gid %d; want 0660, the agent's group %d", fi.Mode().Perm(), st.Gid, agentGID)
	}
	// Nothing the agent writes is world-readable.
	filepath.Walk(h.State, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().Perm()&0o007 != 0 && fi.Mode().Type() != os.ModeSocket {
			t.Errorf("%s is mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
	pid := int(h.Status()["pid"])

	if out := asUser(t, nobody, nogroup, sock, requestLine(t, control.Request{Op: "stop"})); out != "EACCES" {
		t.Errorf("a user outside the agent's group reached the socket: %s", out)
	}

	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer evil.Close()
	genuine := batchTorrent(t, svc, b)
	mi, err := ametainfo.Load(bytes.NewReader(genuine))
	if err != nil {
		t.Fatal(err)
	}
	mi.UrlList = []string{evil.URL + "/"}
	mi.Announce, mi.AnnounceList = evil.URL+"/announce", nil
	var crafted bytes.Buffer
	if err := mi.Write(&crafted); err != nil {
		t.Fatal(err)
	}
	member := func(req []byte, extra ...string) map[string]any {
		out := asUser(t, nobody, agentGID, sock, req, extra...)
		lines := strings.Split(out, "\n")
		var rep map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
			t.Fatalf("reply %q: %v", out, err)
		}
		return rep
	}
	for _, c := range []struct {
		what string
		req  control.Request
		want string
	}{
		{"stop", control.Request{Op: "stop"}, "only root"},
		{"a torrent with another webseed and tracker", control.Request{Op: "fetch", Torrent: crafted.Bytes()}, "not the one the service serves"},
		{"another mirror", control.Request{Op: "fetch", Torrent: genuine, Mirrors: []string{evil.URL + "/"}}, "configured mirrors"},
	} {
		rep := member(requestLine(t, c.req))
		if rep["type"] != "error" || !strings.Contains(rep["error"].(string), c.want) {
			t.Errorf("%s by a group member: %v, want an error saying %q", c.what, rep, c.want)
		}
	}
	if n := evilHits.Load(); n != 0 {
		t.Errorf("the agent sent %d requests to a URL a user named", n)
	}
	// A request line longer than the limit, without newline: refused, the
	// agent stays up and small (it held 459 MB after 400 MiB before).
	rep := member(nil, strconv.Itoa(control.MaxRequest+(8<<20)))
	if rep["type"] != "error" || !strings.Contains(rep["error"].(string), "longer than") {
		t.Errorf("oversized request: %v", rep)
	}
	// The race detector multiplies a binary's memory: the bound holds
	// for the binaries users run.
	if hwm := procStatusKB(t, pid, "VmHWM:"); hwm > 200<<10 && !testkit.Race {
		t.Errorf("agent peak RSS %d kB after an oversized request", hwm)
	} else {
		t.Logf("agent peak RSS %d kB after an oversized request (race detector: %v)", hwm, testkit.Race)
	}
	// What the service vouches for, a group member may fetch.
	if rep := member(requestLine(t, control.Request{Op: "fetch", Torrent: genuine})); rep["type"] != "done" {
		t.Errorf("vouched fetch by a group member: %v", rep)
	}
	if st := h.Status(); st == nil || int(st["pid"]) != pid {
		t.Errorf("the agent did not survive: %v", st)
	}
}

// procStatusKB reads a kB figure (VmHWM:, VmRSS:) of a process.
func procStatusKB(t *testing.T, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

// With no cache directory (neither XDG_CACHE_HOME nor HOME), a non-root
// pkgtorrent-get has no default state directory: it fails naming the
// setting instead of using a predictable /tmp path another user could
// create first.
func TestNoSharedStateDirDefault(t *testing.T) {
	_, _, nobody, nogroup := agentIDs(t)
	get, _ := testkit.Binaries(t)
	cmd := exec.Command(get, "--config", "/dev/null", "status")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(nobody), Gid: uint32(nogroup), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "state-dir") {
		t.Errorf("no cache directory: %v: %s; want a failure naming state-dir", err, out)
	}
	if _, err := os.Lstat(filepath.Join(os.TempDir(), "pkgtorrent-"+strconv.Itoa(nobody))); err == nil {
		t.Errorf("a state directory was made under %s", os.TempDir())
	}
}
