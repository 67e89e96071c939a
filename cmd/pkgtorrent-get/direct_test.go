package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// The direct fetch: a batch no peer has comes straight from the mirror,
// and the agent seeds it.

var directSizes = map[string]int{
	"os/Packages/a/one-1.rpm":   1,
	"os/Packages/b/two-2.rpm":   16<<10 + 3,
	"os/Packages/c/three-3.rpm": 300_007,
	"os/Packages/d/four-4.rpm":  1_200_000,
	"os/Packages/e/five-5.rpm":  65_536,
}

func sizeOf(sizes map[string]int, names []string) int64 {
	var n int64
	for _, name := range names {
		n += int64(sizes[name])
	}
	return n
}

// A lone host fetches directly; its agent then seeds the whole batch: a
// second host with the mirror cut off gets it all from the first.
func TestDirectFetch(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 61, directSizes)
	b := names(directSizes, "os/")
	total := sizeOf(directSizes, b)
	svc, p := proxiedService(t, root)
	first := e2e.NewHost(t)
	d1 := t.TempDir()
	r := first.Get(batchList(t, svc, root, d1, b), "--service", svc.url, "--http-fallback=false", "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("first host: exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, d1, b)
	t.Logf("first host: direct %v, %d bytes, %d from webseed, %d from peers, %.2fs", r.Direct, r.Bytes, r.BytesFromWebseed, r.BytesFromPeers, r.Seconds)
	if !r.Direct || r.BytesFromPeers != 0 || r.Bytes != total {
		t.Errorf("lone host: direct %v, %d bytes (want %d), %d from peers; want a direct fetch of all", r.Direct, r.Bytes, total, r.BytesFromPeers)
	}
	var st map[string]float64
	testkit.WaitFor(t, "the first agent to seed the whole batch", 15*time.Second, func() bool {
		st = first.Status()
		return st != nil && st["seeding"] == 1 && st["from_webseed"] == float64(total)
	})
	if st["from_peers"] != 0 {
		t.Errorf("first agent status %v: bytes from peers", st)
	}

	// The mirror (webseed and files) goes away: only the first host has
	// the batch.
	p.setBlock(isWebseedOrFile)
	second := e2e.NewHost(t)
	d2 := t.TempDir()
	r = second.Get(batchList(t, svc, root, d2, b), "--service", svc.url, "--http-fallback=false", "--peer-grace", "5s", "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("second host: exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, d2, b)
	t.Logf("second host: direct %v, %d bytes, %d from peers, %d from webseed", r.Direct, r.Bytes, r.BytesFromPeers, r.BytesFromWebseed)
	if r.Direct || r.BytesFromPeers != total || r.BytesFromWebseed != 0 {
		t.Errorf("second host: direct %v, %d bytes from peers (want %d), %d from webseed", r.Direct, r.BytesFromPeers, total, r.BytesFromWebseed)
	}
}

// --direct=false: a lone host's batch goes through the agent, from the
// webseed.
func TestDirectOff(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 62, directSizes)
	b := names(directSizes, "os/")
	svc := startService(t, root)
	h := e2e.NewHost(t)
	dir := t.TempDir()
	r := h.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", "--direct=false", "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, b)
	if r.Direct || r.BytesFromWebseed == 0 {
		t.Errorf("--direct=false: direct %v, %d bytes from the webseed; want the agent's fetch from the webseed", r.Direct, r.BytesFromWebseed)
	}
	if st := h.Status(); st == nil || st["seeding"] != 1 {
		t.Errorf("agent status %v, want the batch seeding", st)
	}
}

// The package manager's mirror (the batch's URLs, --mirror) serves another
// content for one file than the service's tree: its direct download fails
// the torrent's check, and the agent fetches it in the fallback round; the
// others come directly. The placed files are the service's.
func TestDirectMirrorDiffers(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 63, directSizes)
	b := names(directSizes, "os/")
	// The mirror's copy of the tree, one file changed (same size).
	other := t.TempDir()
	const changed = "os/Packages/c/three-3.rpm"
	for _, n := range b {
		data, err := os.ReadFile(filepath.Join(root, n))
		if err != nil {
			t.Fatal(err)
		}
		if n == changed {
			data[len(data)/2] ^= 0xFF
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(other, n)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(other, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	total := sizeOf(directSizes, b)
	svc := startService(t, root)
	mirrorURL := plainMirror(t, other)
	h := e2e.NewHost(t)
	dir := t.TempDir()
	// The batch's URLs are the mirror's; its sums the service's files'
	// (the torrent's content).
	list := batchList(t, service{url: mirrorURL}, root, dir, b)
	r := h.Get(list, "--service", svc.url, "--mirror", mirrorURL, "--http-fallback=false", "--stall-timeout", "15s", "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	t.Logf("direct %v, %d bytes, %d from webseed, %d from peers; stderr: %s", r.Direct, r.Bytes, r.BytesFromWebseed, r.BytesFromPeers, strings.TrimSpace(r.Stderr))
	sameFiles(t, root, dir, b)
	if !r.Direct {
		t.Error("not a direct fetch")
	}
	// Only the changed file goes through the agent.
	if !strings.Contains(r.Stderr, "1 files") || !strings.Contains(r.Stderr, "three-3.rpm") || !strings.Contains(r.Stderr, "does not match") {
		t.Errorf("stderr does not tell of the one file that failed its check: %q", r.Stderr)
	}
	if r.BytesFromWebseed < total {
		t.Errorf("%d bytes from the mirror and webseed, less than the batch's %d", r.BytesFromWebseed, total)
	}
	testkit.WaitFor(t, "the agent to seed the whole batch", 15*time.Second, func() bool {
		st := h.Status()
		return st != nil && st["seeding"] == 1
	})
}

// rawAgent is a client of an agent's socket that speaks the protocol by
// hand, as a hostile one would.
type rawAgent struct {
	c *net.UnixConn
	r *bufio.Reader
}

func dialAgent(t *testing.T, state string) *rawAgent {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: control.SocketPath(state), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawAgent{c: c, r: bufio.NewReader(c)}
}

func (a *rawAgent) send(t *testing.T, line []byte, files ...*os.File) error {
	t.Helper()
	_, _, err := a.c.WriteMsgUnix(line, control.Rights(files), nil)
	return err
}

func (a *rawAgent) recv(t *testing.T) control.Reply {
	t.Helper()
	a.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := a.r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading the agent's reply: %v", err)
	}
	var rep control.Reply
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatalf("reply %q: %v", line, err)
	}
	return rep
}

// fdSlack is how many more descriptors the agent may have open than before
// for reasons of its own (peer and tracker connections).
const fdSlack = 8

// agentFDs counts the agent's open descriptors.
func agentFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A client told "direct" sends what is not the batch's files: content of
// the right size that does not match, a pipe (kept open: reading it would
// block), a directory, a device, content too short, a path not in the
// torrent, and a flood of descriptors no request names. The agent marks
// nothing complete, counts nothing, holds no descriptor, stays up, and
// fetches the batch right afterwards.
func TestDirectImportAttack(t *testing.T) {
	root := t.TempDir()
	sizes := map[string]int{"os/x/bad-1.rpm": 200_000, "os/x/pipe-1.rpm": 50_000, "os/x/dir-1.rpm": 40_000, "os/x/dev-1.rpm": 30_000, "os/x/short-1.rpm": 70_000, "os/y/first-1.rpm": 1000}
	makeTree(t, root, 64, sizes)
	svc := startService(t, root)
	h := e2e.NewHost(t)
	// A first batch starts the agent (and seeds).
	if r := h.Get(batchList(t, svc, root, t.TempDir(), []string{"os/y/first-1.rpm"}), "--service", svc.url, "--batch", "-"); r.Code != 0 {
		t.Fatalf("first batch: exit %d: %s", r.Code, r.Stderr)
	}
	var before map[string]float64
	testkit.WaitFor(t, "the first batch to seed", 15*time.Second, func() bool {
		before = h.Status()
		return before != nil && before["seeding"] == 1
	})
	pid := int(before["pid"])
	fdsBefore := agentFDs(t, pid)

	b := names(sizes, "os/x/")
	tb := batchTorrent(t, svc, b)
	name, _, _, _ := torrentFiles(t, tb)
	rel := func(n string) string { return name + "/" + n }
	a := dialAgent(t, h.State)
	if err := a.send(t, requestLine(t, control.Request{Op: "fetch", Torrent: tb, Direct: true})); err != nil {
		t.Fatal(err)
	}
	if rep := a.recv(t); rep.Type != "direct" {
		t.Fatalf("reply %+v, want direct", rep)
	}
	tmp := t.TempDir()
	wrong := filepath.Join(tmp, "wrong")
	if err := os.WriteFile(wrong, testkit.RandBytes(sizes["os/x/bad-1.rpm"], 99), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(tmp, "short")
	good, err := os.ReadFile(filepath.Join(root, "os/x/short-1.rpm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, good[:len(good)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	open := func(p string) *os.File {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	pw.Write(good[:1000])
	imports := []struct {
		path string
		f    *os.File
	}{
		{"os/x/bad-1.rpm", open(wrong)},
		{"os/x/pipe-1.rpm", pr},
		{"os/x/dir-1.rpm", open(tmp)},
		{"os/x/dev-1.rpm", open("/dev/zero")},
		{"os/x/short-1.rpm", open(short)},
		{"os/y/first-1.rpm", open(filepath.Join(root, "os/y/first-1.rpm"))},
		{"../../etc/passwd", open(filepath.Join(root, "os/x/short-1.rpm"))},
	}
	for _, im := range imports {
		if err := a.send(t, requestLine(t, control.Request{Op: "import", Paths: []string{im.path}}), im.f); err != nil {
			t.Fatalf("sending %s: %v", im.path, err)
		}
	}
	// The torrent's paths, as the client names them, are the batch's: with
	// the info name too they name nothing.
	if err := a.send(t, requestLine(t, control.Request{Op: "import", Paths: []string{rel("os/x/bad-1.rpm")}}), open(wrong)); err != nil {
		t.Fatal(err)
	}
	// Descriptors no request names, as many as messages take.
	flood := make([]*os.File, control.MaxImportFiles)
	for i := range flood {
		flood[i] = pr
	}
	for range 10 {
		if err := a.send(t, []byte(" "), flood...); err != nil {
			break // the agent gave up on the connection
		}
	}
	a.c.Close()
	// The imports are taken once the client hung up (no peers): the agent
	// says so in its log, and closes their descriptors.
	testkit.WaitFor(t, "the agent to refuse the files", 15*time.Second, func() bool {
		log, _ := os.ReadFile(filepath.Join(h.State, "agent.log"))
		return strings.Contains(string(log), "file not taken")
	})
	testkit.WaitFor(t, "the agent to close the client's descriptors", 15*time.Second, func() bool {
		return agentFDs(t, pid) <= fdsBefore+fdSlack
	})
	st := h.Status()
	if st == nil || int(st["pid"]) != pid {
		t.Fatalf("the agent did not survive: %v", st)
	}
	if st["seeding"] != 1 || st["from_webseed"] != before["from_webseed"] {
		t.Errorf("after the attack: seeding %v, from_webseed %v (was %v); want only the first batch, nothing counted", st["seeding"], st["from_webseed"], before["from_webseed"])
	}
	if n := agentFDs(t, pid); n > fdsBefore+fdSlack {
		t.Errorf("the agent holds %d descriptors, %d before", n, fdsBefore)
	}
	// The batch fetched normally: every byte downloaded (nothing of the
	// attack was taken), the files right.
	dir := t.TempDir()
	r := h.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("fetch after the attack: exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, b)
	if want := sizeOf(sizes, b); r.Direct || r.BytesFromWebseed < want {
		t.Errorf("fetch after the attack: direct %v, %d bytes from the webseed, want all %d", r.Direct, r.BytesFromWebseed, want)
	}
}
