package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ametainfo "github.com/anacrolix/torrent/metainfo"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// Cross-batch sharing (issue 14): hosts whose batches differ still trade
// the files they have in common.

// crossTree is a tree of common files every host wants and one file of its
// own per host.
func crossTree(t *testing.T, root string, hosts int, commonSize, ownSize int) (common []string, own []string, commonBytes int64) {
	t.Helper()
	sizes := map[string]int{}
	for i := range 5 {
		n := fmt.Sprintf("os/common/c%d-1.0.rpm", i)
		sizes[n] = commonSize + i*1001
		common = append(common, n)
		commonBytes += int64(sizes[n])
	}
	for i := range hosts {
		n := fmt.Sprintf("os/own/u%d-1.0.rpm", i)
		sizes[n] = ownSize + i*7
		own = append(own, n)
	}
	makeTree(t, root, 50, sizes)
	return common, own, commonBytes
}

// A host whose batch shares files with the batch another host seeds gets
// those files from that host, though the two batches are different
// torrents: at most 10% of the shared bytes from the webseed; its own
// file comes from the webseed at once.
func TestCrossBatchLateArrival(t *testing.T) {
	root := t.TempDir()
	common, own, commonBytes := crossTree(t, root, 2, 1_000_000, 300_000)
	svc := startService(t, root)
	first, second := e2e.NewHost(t), e2e.NewHost(t)
	b1, b2 := append([]string{own[0]}, common...), append([]string{own[1]}, common...)
	d1, d2 := t.TempDir(), t.TempDir()
	if r := first.Get(batchList(t, svc, root, d1, b1), "--service", svc.url, "--http-fallback=false", "--batch", "-"); r.Code != 0 {
		t.Fatalf("first host: exit %d: %s", r.Code, r.Stderr)
	}
	r := second.Get(batchList(t, svc, root, d2, b2), "--service", svc.url, "--http-fallback=false", "--peer-grace", "3s", "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("second host: exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, d2, b2)
	t.Logf("second host, other batch: %d bytes, %d from peers, %d from webseed, %.2fs (common %d bytes)", r.Bytes, r.BytesFromPeers, r.BytesFromWebseed, r.Seconds, commonBytes)
	if r.BytesFromPeers < commonBytes*9/10 {
		t.Errorf("%d bytes from peers, want at least 90%% of the %d shared bytes", r.BytesFromPeers, commonBytes)
	}
	ownBytes := r.Bytes - commonBytes
	if shared := r.BytesFromWebseed - ownBytes; shared > commonBytes/10 {
		t.Errorf("about %d shared bytes came from the webseed, more than 10%% of %d", shared, commonBytes)
	}
	// Its own file, which no peer's batch holds, came from the webseed
	// as soon as the peers delivered, not after a peer grace without
	// delivery.
	if b, _ := os.ReadFile(filepath.Join(second.State, "agent.log")); !strings.Contains(string(b), `reason="files no other batch holds`) {
		t.Errorf("the webseeds did not join for the file no other batch holds; agent log:\n%s", b)
	}
}

// Hosts that each fetch their own batch at once, 80% of the bytes common,
// with the origin capped: bytes move between hosts and the origin sends
// less than twice the distinct bytes.
func TestCrossBatchBurst(t *testing.T) {
	const hosts = 4
	root := t.TempDir()
	common, own, commonBytes := crossTree(t, root, hosts, 400_000, 100_000)
	distinct := commonBytes
	for _, n := range own {
		distinct += int64(len(readFile(t, root, n)))
	}
	svc := startService(t, root, "--origin-rate-limit", fmt.Sprint(distinct/3))
	var wg sync.WaitGroup
	results := make([]e2e.Result, hosts)
	dirs := make([]string, hosts)
	batches := make([][]string, hosts)
	for i := range results {
		h := e2e.NewHost(t)
		dirs[i] = t.TempDir()
		batches[i] = append([]string{own[i]}, common...)
		list := batchList(t, svc, root, dirs[i], batches[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.Get(list, "--service", svc.url, "--http-fallback=false", "--peer-grace", "3s", "--batch", "-")
		}()
	}
	wg.Wait()
	var peers int64
	for i, r := range results {
		if r.Code != 0 {
			t.Fatalf("host %d: exit %d: %s", i, r.Code, r.Stderr)
		}
		sameFiles(t, root, dirs[i], batches[i])
		t.Logf("host %d: %d bytes, %d from peers, %d from webseed, %.2fs", i, r.Bytes, r.BytesFromPeers, r.BytesFromWebseed, r.Seconds)
		peers += r.BytesFromPeers
	}
	origin := int64(svc.stats(t)["file_bytes_sent"])
	t.Logf("%d hosts, distinct %d bytes: origin sent %d (%.2fx), %d bytes between hosts", hosts, distinct, origin, float64(origin)/float64(distinct), peers)
	if peers == 0 {
		t.Error("no bytes moved between hosts of different batches")
	}
	if origin >= 2*distinct {
		t.Errorf("origin sent %d bytes, at least twice the %d distinct", origin, distinct)
	}
}

// A host that fetches its batch straight from the mirror (no peer had it)
// hands the rest to the swarm, and seeds what it has at once, when a host of
// another batch that shares its files connects: that host connects for its
// own batch, which the first one adopted, not for the first one's.
func TestCrossBatchDirectYields(t *testing.T) {
	root := t.TempDir()
	common, own, commonBytes := crossTree(t, root, 2, 400_000, 100_000)
	distinct := commonBytes
	for _, n := range own {
		distinct += int64(len(readFile(t, root, n)))
	}
	// The first host's direct fetch takes about 4 s.
	svc := startService(t, root, "--origin-rate-limit", fmt.Sprint(distinct/4))
	first, second := e2e.NewHost(t), e2e.NewHost(t)
	b1, b2 := append([]string{own[0]}, common...), append([]string{own[1]}, common...)
	d1, d2 := t.TempDir(), t.TempDir()
	log := func() string {
		b, _ := os.ReadFile(filepath.Join(first.State, "agent.log"))
		return string(b)
	}
	done := make(chan e2e.Result, 1)
	go func() {
		done <- first.Get(batchList(t, svc, root, d1, b1), "--service", svc.url, "--http-fallback=false", "--batch", "-")
	}()
	testkit.WaitFor(t, "the first host's direct fetch", 30*time.Second, func() bool {
		return strings.Contains(log(), "msg=\"direct fetch\"")
	})
	r2 := second.Get(batchList(t, svc, root, d2, b2), "--service", svc.url, "--http-fallback=false", "--peer-grace", "3s", "--batch", "-")
	r1 := <-done
	for i, r := range []e2e.Result{r1, r2} {
		if r.Code != 0 {
			t.Fatalf("host %d: exit %d: %s", i, r.Code, r.Stderr)
		}
		t.Logf("host %d: %d bytes, %d from peers, %d from webseed, %.2fs", i, r.Bytes, r.BytesFromPeers, r.BytesFromWebseed, r.Seconds)
	}
	sameFiles(t, root, d1, b1)
	sameFiles(t, root, d2, b2)
	if !strings.Contains(log(), "direct fetch: peers arrived") {
		t.Error("the direct fetch did not hand over to the swarm when a host of another batch connected")
	}
	origin := int64(svc.stats(t)["file_bytes_sent"])
	t.Logf("distinct %d bytes: origin sent %d (%.2fx)", distinct, origin, float64(origin)/float64(distinct))
	// The second host fetches its slices of the shared files from the
	// mirror at once (agent.fetcher), some of them files the first one's
	// direct fetch has in flight: 1.00-1.25x measured; without the
	// hand-over the shared bytes come twice (~1.9x).
	if origin > distinct*14/10 {
		t.Errorf("origin sent %d bytes, more than 1.4x the %d distinct", origin, distinct)
	}
}

func readFile(t *testing.T, root, n string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// torrentInfoHash returns the info hash of a .torrent.
func torrentInfoHash(t *testing.T, tb []byte) [20]byte {
	t.Helper()
	mi, err := ametainfo.Load(bytes.NewReader(tb))
	if err != nil {
		t.Fatal(err)
	}
	return mi.HashInfoBytes()
}

// A peer that sends the agent a handshake for a random info hash, or for a
// batch the service knows but whose files the agent does not hold, gets
// the connection closed and nothing else; the agent stays up and keeps
// serving its own batch.
func TestCrossBatchStrangerHandshake(t *testing.T) {
	root := t.TempDir()
	common, own, _ := crossTree(t, root, 2, 50_000, 20_000)
	svc := startService(t, root)
	h := e2e.NewHost(t)
	mine := append([]string{own[0]}, common[:2]...)
	if r := h.Get(batchList(t, svc, root, t.TempDir(), mine), "--service", svc.url, "--http-fallback=false", "--batch", "-"); r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	st := h.Status()
	if st == nil {
		t.Fatal("no agent")
	}
	port := int(st["peer_port"])
	var random [20]byte
	rand.Read(random[:])
	// A batch the service built, none of whose files this host holds.
	foreign := torrentInfoHash(t, postTorrent(t, svc, []string{own[1], common[4]}))
	for what, ih := range map[string][20]byte{"a random info hash": random, "a batch of files not held": foreign} {
		// The engine answers the handshake itself before it looks the
		// info hash up (68 bytes); anything more (a bitfield, pieces) is
		// serving the torrent.
		if got := handshake(t, port, ih); len(got) > 68 {
			t.Errorf("%s: the agent sent %d bytes after the handshake", what, len(got)-68)
		}
	}
	if st2 := h.Status(); st2 == nil || st2["pid"] != st["pid"] || st2["torrents"] != st["torrents"] {
		t.Errorf("agent after the strangers: %v, before %v", st2, st)
	}
	// Its own batch is still served: a second host gets it from the first.
	r := e2e.NewHost(t).Get(batchList(t, svc, root, t.TempDir(), mine), "--service", svc.url, "--http-fallback=false", "--peer-grace", "3s", "--batch", "-")
	if r.Code != 0 || r.BytesFromPeers == 0 {
		t.Errorf("second host: exit %d, %d bytes from peers: %s", r.Code, r.BytesFromPeers, r.Stderr)
	}
}

// handshake sends a BitTorrent handshake for ih to the agent on port and
// returns what it sent before closing the connection.
func handshake(t *testing.T, port int, ih [20]byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var msg bytes.Buffer
	msg.WriteString("\x13BitTorrent protocol")
	msg.Write(make([]byte, 8))
	msg.Write(ih[:])
	msg.WriteString("-XX0001-" + strings.Repeat("s", 12))
	if _, err := c.Write(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	got, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the agent kept a stranger's connection open for 15 s")
	}
	return got
}

// With an external tracker (opentracker) there is no sharing across
// batches (the tracker knows nothing of batches that share files): each
// batch is its own swarm, and a host of another batch fetches from the
// webseed, without any error.
func TestCrossBatchExternalTracker(t *testing.T) {
	testkit.NeedTool(t, "opentracker")
	root := t.TempDir()
	common, own, _ := crossTree(t, root, 2, 200_000, 50_000)
	b1, b2 := append([]string{own[0]}, common...), append([]string{own[1]}, common...)
	var svc service
	for try := 0; ; try++ { // the port may be taken before opentracker binds it
		port := freePort(t)
		svc = startService(t, root, "--tracker", fmt.Sprintf("http://127.0.0.1:%d/announce", port))
		var hashes []string
		for _, b := range [][]string{b1, b2} {
			ih := torrentInfoHash(t, batchTorrent(t, svc, b))
			hashes = append(hashes, fmt.Sprintf("%x", ih))
		}
		if startOpentracker(t, port, hashes) {
			break
		}
		if try == 2 {
			t.Fatal("opentracker did not start")
		}
	}
	first, second := e2e.NewHost(t), e2e.NewHost(t)
	d1, d2 := t.TempDir(), t.TempDir()
	if r := first.Get(batchList(t, svc, root, d1, b1), "--service", svc.url, "--http-fallback=false", "--batch", "-"); r.Code != 0 {
		t.Fatalf("first host: exit %d: %s", r.Code, r.Stderr)
	}
	r := second.Get(batchList(t, svc, root, d2, b2), "--service", svc.url, "--http-fallback=false", "--batch", "-")
	if r.Code != 0 || r.Fallback {
		t.Fatalf("second host: exit %d, fallback %v: %s", r.Code, r.Fallback, r.Stderr)
	}
	sameFiles(t, root, d2, b2)
	t.Logf("external tracker, other batch: %d bytes, %d from peers, %d from webseed", r.Bytes, r.BytesFromPeers, r.BytesFromWebseed)
}

// One host fetching two batches at once that share a file takes that file
// from the origin about once: a piece completed through one torrent is
// complete in the other.
func TestCrossBatchNoDuplicateDownload(t *testing.T) {
	root := t.TempDir()
	common, own, commonBytes := crossTree(t, root, 2, 600_000, 30_000)
	distinct := commonBytes + int64(len(readFile(t, root, own[0]))+len(readFile(t, root, own[1])))
	svc := startService(t, root, "--origin-rate-limit", fmt.Sprint(distinct/3))
	h := e2e.NewHost(t)
	batches := [][]string{append([]string{own[0]}, common...), append([]string{own[1]}, common...)}
	// The agent runs before the two fetches, so that both use one agent.
	if r := h.Get(batchList(t, svc, root, t.TempDir(), []string{own[0]}), "--service", svc.url, "--batch", "-"); r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	base := int64(svc.stats(t)["file_bytes_sent"])
	var wg sync.WaitGroup
	results := make([]e2e.Result, 2)
	dirs := []string{t.TempDir(), t.TempDir()}
	for i := range batches {
		list := batchList(t, svc, root, dirs[i], batches[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.Get(list, "--service", svc.url, "--http-fallback=false", "--batch", "-")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Fatalf("batch %d: exit %d: %s", i, r.Code, r.Stderr)
		}
		sameFiles(t, root, dirs[i], batches[i])
	}
	origin := int64(svc.stats(t)["file_bytes_sent"]) - base
	want := commonBytes + int64(len(readFile(t, root, own[1])))
	t.Logf("two batches sharing %d bytes on one host: origin sent %d bytes for %d distinct (%.2fx)", commonBytes, origin, want, float64(origin)/float64(want))
	if origin > want*3/2 {
		t.Errorf("origin sent %d bytes for %d distinct: the shared file was fetched twice", origin, want)
	}
}
