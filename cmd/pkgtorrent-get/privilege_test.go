package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// procUID returns the real and effective uid of a process from /proc.
func procUID(t *testing.T, pid int) (string, string) {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			f := strings.Fields(rest)
			return f[0], f[1]
		}
	}
	t.Fatal("no Uid line")
	return "", ""
}

func itoa(i int) string { return strconv.Itoa(i) }

// Started by root, the agent runs as the agent user (never uid 0), owns its
// state directory, and the files it fetched are placed as root's own copies.
func TestAgentNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the privilege drop applies when pkgtorrent-get runs as root")
	}
	root := t.TempDir()
	makeTree(t, root, 30, oddSizes)
	svc := startService(t, root)
	h := e2e.NewHost(t)
	dir := t.TempDir()
	b := names(oddSizes, "os/Packages/")
	if r := h.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", "--batch", "-"); r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, b)
	st := h.Status()
	if st == nil {
		t.Fatal("no agent running after the fetch")
	}
	ruid, euid := procUID(t, int(st["pid"]))
	t.Logf("agent pid %d runs as uid %s/%s", int(st["pid"]), ruid, euid)
	if ruid == "0" || euid == "0" {
		t.Fatalf("the agent runs as root (uid %s/%s)", ruid, euid)
	}
	fi, err := os.Stat(filepath.Join(h.State, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; itoa(int(uid)) != euid {
		t.Errorf("state data directory belongs to uid %d, the agent is %s", uid, euid)
	}
	for _, n := range b {
		fi, err := os.Stat(filepath.Join(dir, outName(n)))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Nlink != 1 {
			t.Errorf("%s: uid %d, %d links: want root's own copy", n, st.Uid, st.Nlink)
		}
	}
	// An agent user that does not exist is an error (and the fallback takes over).
	h2 := e2e.NewHost(t)
	dir2 := t.TempDir()
	r := h2.Get(batchList(t, svc, root, dir2, b[:1]), "--service", svc.url, "--agent-user", "no-such-user-pkgtorrent", "--batch", "-")
	if r.Code != 0 || !r.Fallback || !strings.Contains(r.Stderr, "no-such-user-pkgtorrent") {
		t.Errorf("unknown agent user: exit %d, fallback %v: %s", r.Code, r.Fallback, r.Stderr)
	}
	// The agent refuses to run as root when started by hand.
	get, _ := testkit.Binaries(t)
	cmd := exec.Command(get, "--config", "/dev/null", "--state-dir", t.TempDir(), "agent")
	cmd.Env = testkit.CleanEnv()
	done := make(chan []byte, 1)
	go func() { out, _ := cmd.CombinedOutput(); done <- out }()
	select {
	case out := <-done:
		if !strings.Contains(string(out), "does not run as root") || cmd.ProcessState.ExitCode() == 0 {
			t.Errorf("agent as root: exit %d: %s", cmd.ProcessState.ExitCode(), out)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the agent started as root")
	}
}

// With --max-disk the agent keeps its data under the cap: the torrent seeded
// longest ago is dropped and its data deleted.
func TestMaxDisk(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 31, map[string]int{"os/a.rpm": 1_000_000, "os/b.rpm": 1_000_000, "os/c.rpm": 1_000_000})
	svc := startService(t, root)
	h := e2e.NewHost(t)
	dataFiles := func() map[string]bool {
		m := map[string]bool{}
		filepath.Walk(filepath.Join(h.State, "data"), func(p string, fi os.FileInfo, err error) error {
			// One pack per batch; its index beside it does not count.
			if err == nil && fi.Mode().IsRegular() && !strings.HasSuffix(p, ".idx") {
				m[filepath.Base(p)] = true
			}
			return nil
		})
		return m
	}
	var first map[string]bool
	for i, n := range []string{"os/a.rpm", "os/b.rpm", "os/c.rpm"} {
		dir := t.TempDir()
		r := h.Get(batchList(t, svc, root, dir, []string{n}), "--service", svc.url, "--http-fallback=false", "--direct=false", "--max-disk", "2100000", "--batch", "-")
		if r.Code != 0 {
			t.Fatalf("%s: exit %d: %s", n, r.Code, r.Stderr)
		}
		sameFiles(t, root, dir, []string{n})
		if i == 0 {
			first = dataFiles()
		}
	}
	// Eviction runs on the agent's tick: wait for it.
	var files map[string]bool
	testkit.Poll(15*time.Second, func() bool {
		files = dataFiles()
		return len(files) <= 2
	})
	if len(files) != 2 {
		t.Fatalf("%d data files kept under a cap of two", len(files))
	}
	for k := range first {
		if files[k] {
			t.Errorf("the oldest data (%s) was kept", k)
		}
	}
	if st := h.Status(); st == nil || st["torrents"] != 2 {
		t.Errorf("agent status after eviction: %v", st)
	}
	// The evicted batch is fetched again (from the mirror) when asked for.
	dir := t.TempDir()
	if r := h.Get(batchList(t, svc, root, dir, []string{"os/a.rpm"}), "--service", svc.url, "--http-fallback=false", "--direct=false", "--max-disk", "2100000", "--batch", "-"); r.Code != 0 {
		t.Fatalf("refetch: exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, []string{"os/a.rpm"})
}
