package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/mirror"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// The end-to-end tests run the real binaries: pkgtorrent-service over a
// temporary tree, pkgtorrent-get clients with separate state directories
// (each its own agent, i.e. its own "host"), all on 127.0.0.1.

func TestMain(m *testing.M) { testkit.Main(m) }

type service struct {
	url string
}

// startService runs pkgtorrent-service over root and returns its URL.
func startService(t *testing.T, root string, extra ...string) service {
	t.Helper()
	return service{url: testkit.StartService(t, root, extra...)}
}

// stats reads the service's counters.
func (s service) stats(t *testing.T) map[string]float64 {
	t.Helper()
	return e2e.Stats(t, s.url)
}

// makeTree writes files of the given sizes (random content) under root and
// returns their relative paths.
func makeTree(t *testing.T, root string, seed int64, sizes map[string]int) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	for name, size := range sizes {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		rng.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// batchList returns a --batch list for names, with sha256 sums, into dir.
func batchList(t *testing.T, svc service, root, dir string, names []string) string {
	t.Helper()
	var sb strings.Builder
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(root, n))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		u, err := mirror.FileURL(svc.url, n)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s %s sha256:%s\n", u, filepath.Join(dir, outName(n)), hex.EncodeToString(sum[:]))
	}
	return sb.String()
}

// outName is where a test puts the repository file n: its base name, with
// no whitespace (the batch format separates fields by whitespace).
func outName(n string) string {
	return strings.ReplaceAll(filepath.Base(n), " ", "_")
}

func sameFiles(t *testing.T, root, dir string, names []string) {
	t.Helper()
	for _, n := range names {
		want, err := os.ReadFile(filepath.Join(root, n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, outName(n)))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s differs from the origin", n)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(names) {
		t.Fatalf("%s holds %d entries, want %d (leftover temporary files?)", dir, len(entries), len(names))
	}
}

var oddSizes = map[string]int{
	"os/Packages/a/alpha-1.0.rpm":  1,
	"os/Packages/b/beta-2.1.rpm":   16<<10 + 7,
	"os/Packages/g/gamma-0.9.rpm":  300_001,
	"os/Packages/d/delta+x-3.rpm":  1_234_567,
	"os/Packages/e/epsilon 4.rpm":  2_500_003,
	"os/Packages/z/zeta-9.9.rpm":   65_535,
	"os/repodata/repomd.xml":       4_321,
	"other/unrelated-file.tar.zst": 99_999,
}

func names(m map[string]int, prefix string) []string {
	var out []string
	for n := range m {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// Three clients fetch the same batch at once from a rate-limited origin.
func TestBurstThreeClients(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 1, oddSizes)
	batchNames := names(oddSizes, "os/Packages/")
	var total int64
	for _, n := range batchNames {
		total += int64(oddSizes[n])
	}
	// The origin alone would need total/limit = ~4 s per client.
	svc := startService(t, root, "--origin-rate-limit", fmt.Sprint(total/4))
	// A generous peer grace: on a loaded test machine connecting to peers
	// can take longer than the 1 s default.
	var peers, web, bytes int64
	for _, r := range burst(t, svc, root, batchNames, 3, "--peer-grace", "5s") {
		peers += r.BytesFromPeers
		web += r.BytesFromWebseed
		bytes += r.Bytes
	}
	st := svc.stats(t)
	t.Logf("three clients: %d bytes delivered, %d from peers, %d from webseed; origin sent %.0f file bytes", bytes, peers, web, st["file_bytes_sent"])
	if peers == 0 {
		t.Fatal("no bytes came from peers")
	}
}

// burst has n new hosts fetch the files names of root from svc at once
// (pkgtorrent-get with args, --service and --batch), checks that each
// exits 0 having placed them all, and returns their results.
func burst(t *testing.T, svc service, root string, names []string, n int, args ...string) []e2e.Result {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]e2e.Result, n)
	dirs := make([]string, n)
	for i := range results {
		h := e2e.NewHost(t)
		dirs[i] = t.TempDir()
		list := batchList(t, svc, root, dirs[i], names)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.Get(list, append(append([]string{"--service", svc.url}, args...), "--batch", "-")...)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Fatalf("host %d: exit %d: %s", i, r.Code, r.Stderr)
		}
		sameFiles(t, root, dirs[i], names)
		t.Logf("host %d: %d files, %d bytes, %d from peers, %d from webseed, %.2fs (direct %t)", i, r.Files, r.Bytes, r.BytesFromPeers, r.BytesFromWebseed, r.Seconds, r.Direct)
	}
	return results
}

// A client arriving after another has the batch takes it from that peer.
func TestLateArrival(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 2, oddSizes)
	batchNames := names(oddSizes, "os/")
	svc := startService(t, root)
	first, second := e2e.NewHost(t), e2e.NewHost(t)
	d1, d2 := t.TempDir(), t.TempDir()
	if r := first.Get(batchList(t, svc, root, d1, batchNames), "--service", svc.url, "--batch", "-"); r.Code != 0 {
		t.Fatalf("first client: %s", r.Stderr)
	}
	// A generous peer grace: on a loaded test machine connecting to the
	// seeding peer can take longer than the 1 s default.
	r := second.Get(batchList(t, svc, root, d2, batchNames), "--service", svc.url, "--peer-grace", "5s", "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("second client: %s", r.Stderr)
	}
	sameFiles(t, root, d2, batchNames)
	t.Logf("late arrival: %d bytes, %d from peers, %d from webseed, %.2fs", r.Bytes, r.BytesFromPeers, r.BytesFromWebseed, r.Seconds)
	if r.BytesFromWebseed*10 > r.Bytes {
		t.Fatalf("late arrival took %d of %d bytes from the webseed (> 10%%)", r.BytesFromWebseed, r.Bytes)
	}
}

// One client alone completes from the webseed; a second batch sharing files
// with the first reuses their cached piece hashes.
func TestWebseedOnlyAndHashReuse(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 3, oddSizes)
	svc := startService(t, root)
	h := e2e.NewHost(t)
	d1 := t.TempDir()
	b1 := []string{"os/Packages/a/alpha-1.0.rpm", "os/Packages/d/delta+x-3.rpm", "os/Packages/e/epsilon 4.rpm"}
	r := h.Get(batchList(t, svc, root, d1, b1), "--service", svc.url, "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, d1, b1)
	if r.BytesFromWebseed == 0 || r.BytesFromPeers != 0 {
		t.Fatalf("webseed-only fetch: %d from webseed, %d from peers", r.BytesFromWebseed, r.BytesFromPeers)
	}
	if pads := svc.stats(t)["pad_bytes_sent"]; pads != 0 {
		t.Fatalf("the service sent %.0f pad bytes: pads must be answered by the client itself", pads)
	}
	before := svc.stats(t)["hash_bytes_read"]
	d2 := t.TempDir()
	b2 := []string{"os/Packages/d/delta+x-3.rpm", "os/Packages/e/epsilon 4.rpm", "os/Packages/z/zeta-9.9.rpm"}
	r = h.Get(batchList(t, svc, root, d2, b2), "--service", svc.url, "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, d2, b2)
	if read := svc.stats(t)["hash_bytes_read"] - before; read != float64(oddSizes["os/Packages/z/zeta-9.9.rpm"]) {
		t.Fatalf("second batch read %.0f bytes for hashing, want only the new file's %d", read, oddSizes["os/Packages/z/zeta-9.9.rpm"])
	}
}

// The single-file form: pkgtorrent-get URL OUTPUT.
func TestSingleFile(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 4, oddSizes)
	svc := startService(t, root)
	h := e2e.NewHost(t)
	dir := t.TempDir()
	name := "os/Packages/g/gamma-0.9.rpm"
	out := filepath.Join(dir, "gamma-0.9.rpm")
	if r := h.Get("", "--service", svc.url, svc.url+name, out); r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, []string{name})
	// The agent it started (pkgtorrent-agent, beside it) runs on one CPU
	// unless max-cpus says otherwise.
	cpus := func(want string) {
		t.Helper()
		log, _ := os.ReadFile(filepath.Join(h.State, "agent.log"))
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		started := ""
		for _, l := range lines {
			if strings.Contains(l, "agent started") {
				started = l
			}
		}
		if !strings.Contains(started, " cpus="+want+" ") && !strings.HasSuffix(started, " cpus="+want) {
			t.Errorf("agent start %q, want cpus=%s", started, want)
		}
	}
	cpus("1")
	h.Stop()
	if r := h.Get("", "--service", svc.url, "--max-cpus", "2", svc.url+name, out); r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	cpus("2")
}

// With the service down the client fails within the connect timeout and
// leaves nothing at the output.
func TestServiceDown(t *testing.T) {
	url := testkit.DeadURL(t)
	h := e2e.NewHost(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "x.rpm")
	r := h.Get("", "--service", url, "--connect-timeout", "1s", url+"os/x.rpm", out)
	if r.Code == 0 {
		t.Fatal("exit 0 with the service down")
	}
	t.Logf("service down: exit %d after %s: %s", r.Code, r.Wall, strings.TrimSpace(r.Stderr))
	if r.Wall > 10*time.Second {
		t.Fatalf("took %s to give up", r.Wall)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %d entries in the output directory", len(entries))
	}
}

// Data an agent finds on disk from an earlier run is hashed again before it
// counts: a corrupted data file is fetched again, never placed.
func TestAgentRestartRehashes(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 5, oddSizes)
	svc := startService(t, root)
	h := e2e.NewHost(t)
	b := []string{"os/Packages/g/gamma-0.9.rpm", "os/Packages/d/delta+x-3.rpm"}
	d1 := t.TempDir()
	// The agent downloads (not a direct fetch): its data is on disk when
	// the fetch returns.
	if r := h.Get(batchList(t, svc, root, d1, b), "--service", svc.url, "--direct=false", "--batch", "-"); r.Code != 0 {
		t.Fatalf("first fetch: %s", r.Stderr)
	}
	h.Stop()
	// Corrupt every file's data in place (same size): the store keeps the
	// batch in a pack, whose index ("key offset size" lines) says where.
	var corrupted int
	idxs, _ := filepath.Glob(filepath.Join(h.State, "data", "packs", "*.idx"))
	for _, idx := range idxs {
		index, err := os.ReadFile(idx)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(strings.TrimSuffix(idx, ".idx"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(index)), "\n") {
			var key string
			var off, size int64
			if _, err := fmt.Sscanf(line, "%s %d %d", &key, &off, &size); err != nil {
				t.Fatalf("pack index line %q: %v", line, err)
			}
			f.WriteAt([]byte("corrupt!"), off+size/2)
			corrupted++
		}
		f.Close()
	}
	if corrupted != len(b) {
		t.Fatalf("found %d data files, want %d", corrupted, len(b))
	}
	before := svc.stats(t)["file_bytes_sent"]
	d2 := t.TempDir()
	r := h.Get(batchList(t, svc, root, d2, b), "--service", svc.url, "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("second fetch: %s", r.Stderr)
	}
	sameFiles(t, root, d2, b)
	if sent := svc.stats(t)["file_bytes_sent"] - before; sent == 0 {
		t.Fatal("the corrupted pieces were not fetched again")
	}
}

// With the service down, the plain HTTP fallback fetches the file from its
// URL (a plain mirror); with the fallback off, the fetch fails.
func TestHTTPFallback(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 6, oddSizes)
	mirrorURL := testkit.StartMirror(t, root, 0).URL
	deadURL := testkit.DeadURL(t)

	name := "os/Packages/d/delta+x-3.rpm"
	h := e2e.NewHost(t)
	dir := t.TempDir()
	out := filepath.Join(dir, outName(name))
	fileURL, _ := mirror.FileURL(mirrorURL, name)
	r := h.Get("", "--service", deadURL, "--mirror", mirrorURL, "--http-fallback=false", fileURL, out)
	if r.Code == 0 {
		t.Fatal("exit 0 with the service down and the fallback off")
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("output exists after a failed fetch")
	}
	r = h.Get("", "--service", deadURL, "--mirror", mirrorURL, fileURL, out)
	if r.Code != 0 {
		t.Fatalf("fallback: exit %d: %s", r.Code, r.Stderr)
	}
	if !r.Fallback || r.BytesFromHTTP != int64(oddSizes[name]) {
		t.Errorf("--json says fallback=%v, %d bytes over HTTP", r.Fallback, r.BytesFromHTTP)
	}
	if !strings.Contains(r.Stderr, "plain HTTP") {
		t.Errorf("no notice of the fallback on stderr: %q", r.Stderr)
	}
	sameFiles(t, root, dir, []string{name})
	t.Logf("fallback: %d bytes over plain HTTP in %s", r.BytesFromHTTP, r.Wall)
}
