package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	ametainfo "github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/mirror"
	"github.com/pkgtorrent/pkgtorrent/core/tracker"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// The fault matrix of issue 7: each test injects one fault with real
// processes on 127.0.0.1 and asserts that pkgtorrent-get either succeeds
// with byte-identical files or fails fast, non-zero, with a one-line reason,
// and that no partial or unverified file is ever left at a destination.
// Each outcome is logged as a "matrix:" line (go test -v -run Fault).

// matrixRow logs one outcome of the matrix.
func matrixRow(t *testing.T, row, what string, r e2e.Result) {
	t.Helper()
	outcome := "ok"
	if r.Code != 0 {
		outcome = fmt.Sprintf("exit %d: %s", r.Code, oneLine(t, r.Stderr))
	}
	t.Logf("matrix: %s | %s | %s | %.2fs", row, what, outcome, r.Wall.Seconds())
}

// oneLine returns the last line of a failed run's stderr, checking that the
// reason is a single "pkgtorrent-get: " line (progress lines may precede it).
func oneLine(t *testing.T, stderr string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "pkgtorrent-get: ") || len(last) < len("pkgtorrent-get: ")+10 {
		t.Errorf("failure reason is not a clear pkgtorrent-get line: %q", stderr)
	}
	return last
}

// mustFail checks a failed run: non-zero, within bound, reason mentioning want.
func mustFail(t *testing.T, r e2e.Result, bound time.Duration, want ...string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("exit 0, want a failure mentioning %q", want)
	}
	if r.Wall > bound {
		t.Errorf("took %s to give up, want at most %s", r.Wall, bound)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("reason %q does not mention %q", strings.TrimSpace(r.Stderr), w)
		}
	}
}

// noLeftovers checks that dir holds no temporary files and nothing but the
// names allowed (each of which, if present, must equal its origin file).
func noLeftovers(t *testing.T, root, dir string, allowed []string) {
	t.Helper()
	ok := map[string]string{}
	for _, n := range allowed {
		ok[outName(n)] = n
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n, known := ok[e.Name()]
		if !known || strings.Contains(e.Name(), ".pkgtorrent-") {
			t.Errorf("%s: unexpected entry %s (partial or temporary file?)", dir, e.Name())
			continue
		}
		want, _ := os.ReadFile(filepath.Join(root, n))
		got, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %s is not the origin file", dir, e.Name())
		}
	}
}

// deadURL returns a loopback URL nothing listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String() + "/"
	ln.Close()
	return u
}

// serveHTTP serves h on a loopback port until the test ends.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// plainMirror serves root as a plain HTTP mirror.
func plainMirror(t *testing.T, root string) string {
	return serveHTTP(t, http.FileServer(http.Dir(root)))
}

// faultProxy stands between clients and a service: every URL of the
// service's torrents (tracker, webseed) goes through it, and paths it is
// told to block fail as if the server were down (connection dropped).
type faultProxy struct {
	url    string
	target atomic.Pointer[url.URL]
	block  atomic.Pointer[func(string) bool]
}

func newFaultProxy(t *testing.T) *faultProxy {
	p := &faultProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(p.target.Load()) },
		FlushInterval: -1,
		ErrorLog:      nil,
	}
	p.url = serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b := p.block.Load(); b != nil && (*b)(r.URL.Path) {
			panic(http.ErrAbortHandler) // drop the connection
		}
		rp.ServeHTTP(w, r)
	}))
	return p
}

func (p *faultProxy) setBlock(f func(path string) bool) { p.block.Store(&f) }

// proxiedService starts a service over root whose torrents point at a fault
// proxy; clients use the proxy's URL.
func proxiedService(t *testing.T, root string, extra ...string) (service, *faultProxy) {
	p := newFaultProxy(t)
	svc := startService(t, root, append([]string{"--public-url", p.url}, extra...)...)
	u, err := url.Parse(svc.url)
	if err != nil {
		t.Fatal(err)
	}
	p.target.Store(u)
	return service{url: p.url}, p
}

func isWebseedOrFile(p string) bool {
	return !strings.HasPrefix(p, "/.pkgtorrent/") || strings.HasPrefix(p, api.Prefix+api.WebseedPath)
}

func isTracker(p string) bool {
	return strings.HasSuffix(p, "/announce") || strings.HasSuffix(p, "/scrape")
}

// Row 1: the service unreachable, answering 500, answering garbage, or not
// answering at all: the torrent path fails fast with the reason; the plain
// HTTP fallback (default) rescues from the file URL.
func TestFault1Service(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 11, oddSizes)
	mirrorURL := plainMirror(t, root)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	services := []struct {
		name, url string
		want      string
	}{
		{"unreachable", deadURL(t), "service unreachable"},
		{"500", serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		})), "500 Internal Server Error"},
		{"garbage", serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>this is not a torrent</html>")
		})), "bad torrent"},
		{"no answer", serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		})), "timeout"},
	}
	name := "os/Packages/g/gamma-0.9.rpm"
	h := e2e.NewHost(t)
	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			list := batchList(t, service{url: mirrorURL}, root, dir, []string{name})
			args := []string{"--service", s.url, "--mirror", mirrorURL, "--connect-timeout", "1s", "--stall-timeout", "2s", "--batch", "-"}
			r := h.Get(list, append(args, "--http-fallback=false")...)
			matrixRow(t, "1 service "+s.name, "torrent path, fallback off", r)
			mustFail(t, r, 10*time.Second, s.want)
			noLeftovers(t, root, dir, nil)
			r = h.Get(list, args...)
			matrixRow(t, "1 service "+s.name, "fallback on", r)
			if r.Code != 0 || !r.Fallback {
				t.Fatalf("fallback did not rescue: exit %d fallback=%v: %s", r.Code, r.Fallback, r.Stderr)
			}
			sameFiles(t, root, dir, []string{name})
		})
	}
}

// Row 2: the tracker down, embedded (its paths dropped by the proxy) or
// external (nothing listening): the webseed completes the batch.
func TestFault2TrackerDown(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 12, oddSizes)
	b := names(oddSizes, "os/Packages/")
	t.Run("embedded", func(t *testing.T) {
		svc, p := proxiedService(t, root)
		p.setBlock(isTracker)
		dir := t.TempDir()
		r := e2e.NewHost(t).Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", "--batch", "-")
		matrixRow(t, "2 tracker down (embedded)", "webseed completes", r)
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		sameFiles(t, root, dir, b)
	})
	t.Run("external", func(t *testing.T) {
		svc := startService(t, root, "--tracker", deadURL(t)+"announce")
		dir := t.TempDir()
		r := e2e.NewHost(t).Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", "--batch", "-")
		matrixRow(t, "2 tracker down (external)", "webseed completes", r)
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		sameFiles(t, root, dir, b)
	})
}

// Row 3: the mirror (webseed and files) down while a peer has the data: the
// peer completes it; mirror and peers down: fail fast, also with the fallback.
func TestFault3MirrorDown(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 13, oddSizes)
	b := names(oddSizes, "os/")
	svc, p := proxiedService(t, root)
	seeder := e2e.NewHost(t)
	d0 := t.TempDir()
	if r := seeder.Get(batchList(t, svc, root, d0, b), "--service", svc.url, "--batch", "-"); r.Code != 0 {
		t.Fatalf("seeder: %s", r.Stderr)
	}
	p.setBlock(isWebseedOrFile)
	dir := t.TempDir()
	leecher := e2e.NewHost(t)
	r := leecher.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", "--batch", "-")
	matrixRow(t, "3 mirror down, peer up", "peer completes", r)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, b)
	if r.BytesFromWebseed != 0 || r.BytesFromPeers == 0 {
		t.Errorf("%d bytes from the webseed, %d from peers", r.BytesFromWebseed, r.BytesFromPeers)
	}

	seeder.Stop()
	leecher.Stop()
	for _, fallback := range []string{"false", "true"} {
		dir := t.TempDir()
		r := e2e.NewHost(t).Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--stall-timeout", "3s", "--http-fallback="+fallback, "--batch", "-")
		matrixRow(t, "3 mirror and peers down", "fallback "+fallback, r)
		mustFail(t, r, 20*time.Second, "no progress for 3s")
		noLeftovers(t, root, dir, nil)
	}
}

// corruptStorage is a malicious seeder's storage: it claims every piece and
// serves the batch with every byte of each piece flipped.
type corruptStorage struct {
	data   []byte // the torrent's payload, pads included
	served atomic.Int64
}

func (c *corruptStorage) OpenTorrent(_ context.Context, info *ametainfo.Info, _ ametainfo.Hash) (storage.TorrentImpl, error) {
	return storage.TorrentImpl{Piece: func(p ametainfo.Piece) storage.PieceImpl {
		return corruptPiece{c, p.Offset(), p.Length()}
	}, Close: func() error { return nil }}, nil
}

type corruptPiece struct {
	c        *corruptStorage
	off, len int64
}

func (p corruptPiece) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.len {
		return 0, io.EOF
	}
	n := copy(b, p.c.data[p.off+off:p.off+p.len])
	for i := range b[:n] {
		b[i] ^= 0xff
	}
	p.c.served.Add(int64(n))
	return n, nil
}
func (p corruptPiece) WriteAt(b []byte, off int64) (int, error) { return len(b), nil }
func (p corruptPiece) MarkComplete() error                      { return nil }
func (p corruptPiece) MarkNotComplete() error                   { return nil }
func (p corruptPiece) Completion() storage.Completion {
	return storage.Completion{Ok: true, Complete: true}
}

// postTorrent is batchTorrent, under the name crossbatch_test.go uses.
func postTorrent(t *testing.T, svc service, names []string) []byte {
	t.Helper()
	return batchTorrent(t, svc, names)
}

// Row 4: a malicious seeder (anacrolix/torrent with a lying storage) is the
// only peer in the swarm: its pieces fail their hash, it is banned, and the
// batch completes from the mirror, byte-identical.
func TestFault4MaliciousPeer(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 14, oddSizes)
	b := names(oddSizes, "os/Packages/")
	svc := startService(t, root)
	mi, err := ametainfo.Load(bytes.NewReader(batchTorrent(t, svc, b)))
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	cs := &corruptStorage{}
	for _, f := range info.UpvertedFiles() {
		if strings.Contains(f.Attr, "p") {
			cs.data = append(cs.data, make([]byte, f.Length)...)
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, strings.Join(f.Path, "/")))
		if err != nil {
			t.Fatal(err)
		}
		cs.data = append(cs.data, data...)
	}
	cfg := torrent.NewDefaultClientConfig()
	cfg.DataDir = t.TempDir()
	cfg.DefaultStorage = cs
	cfg.Seed = true
	cfg.NoDHT = true
	cfg.DisableUTP = true
	cfg.DisableIPv6 = true
	cfg.NoDefaultPortForwarding = true
	cfg.ListenHost = func(string) string { return "127.0.0.1" }
	cfg.ListenPort = 0
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		t.Fatal(err)
	}
	spec.Webseeds = nil // it only lies, it fetches nothing
	if _, _, err := cl.AddTorrentSpec(spec); err != nil {
		t.Fatal(err)
	}
	// Wait until the tracker lists the malicious seeder.
	testkit.WaitFor(t, "the malicious seeder at the tracker", 10*time.Second, func() bool {
		resp, err := http.Get(api.ScrapeURL(svc.url) + "?info_hash=" + url.QueryEscape(string(mi.HashInfoBytes().Bytes())))
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return bytes.Contains(body, []byte("8:completei1e"))
	})
	h := e2e.NewHost(t)
	dir := t.TempDir()
	// A generous peer grace: under the race detector connecting to the
	// only peer can take longer than the 1 s default, and the mirror
	// would then send everything before the peer could lie.
	r := h.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", "--peer-grace", "5s", "--batch", "-")
	matrixRow(t, "4 malicious peer", "banned, mirror completes", r)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, b)
	log, _ := os.ReadFile(filepath.Join(h.State, "agent.log"))
	t.Logf("malicious peer served %d corrupt bytes; victim: %d from peers, %d from webseed", cs.served.Load(), r.BytesFromPeers, r.BytesFromWebseed)
	if cs.served.Load() == 0 {
		t.Fatal("the victim never took data from the malicious peer: the test proved nothing")
	}
	if !bytes.Contains(log, []byte("banning peer")) && !bytes.Contains(log, []byte("smart banned peer")) {
		t.Errorf("the agent did not ban the malicious peer; log:\n%s", log)
	}
}

// Row 5: a file replaced on the mirror after its torrent was built. Replaced
// behind the service's back (same size, mtime restored): the webseed's data
// fails the piece hashes, the engine drops the webseed at its first bad
// piece, the fetch gives up at --stall-timeout, and the fallback's download
// fails the caller's sha256: nothing is placed. Replaced
// normally: the service rebuilds on the next request and the new content
// arrives.
func TestFault5ReplacedOnMirror(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 15, oddSizes)
	name := "os/Packages/d/delta+x-3.rpm"
	b := []string{name, "os/Packages/a/alpha-1.0.rpm"}
	svc := startService(t, root)
	dir := t.TempDir()
	list := batchList(t, svc, root, dir, b) // the sums of the original content
	batchTorrent(t, svc, b)

	p := filepath.Join(root, name)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte("X"), 100_000), 200_000)
	f.Close()
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	for _, fallback := range []string{"false", "true"} {
		r := e2e.NewHost(t).Get(list, "--service", svc.url, "--stall-timeout", "3s", "--http-fallback="+fallback, "--batch", "-")
		matrixRow(t, "5 file replaced, service unaware", "fallback "+fallback, r)
		if fallback == "false" {
			mustFail(t, r, 20*time.Second, "no progress")
		} else {
			mustFail(t, r, 20*time.Second, "sha256")
		}
		noLeftovers(t, root, dir, []string{"os/Packages/a/alpha-1.0.rpm"})
		if _, err := os.Stat(filepath.Join(dir, outName(name))); err == nil {
			t.Fatal("the replaced file was placed")
		}
	}
	built := svc.stats(t)["torrents_built"]
	now := time.Now()
	os.Chtimes(p, now, now) // the mirror's sync sets a new mtime
	dir2 := t.TempDir()
	r := e2e.NewHost(t).Get(batchList(t, svc, root, dir2, b), "--service", svc.url, "--http-fallback=false", "--batch", "-")
	matrixRow(t, "5 file replaced, new mtime", "service rebuilds", r)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir2, b)
	if got := svc.stats(t)["torrents_built"]; got != built+1 {
		t.Errorf("torrents built %v -> %v, want one rebuild", built, got)
	}
}

// Row 6: the caller's sha256 does not match what arrives: not placed, exit
// non-zero (the fallback gets the same bytes and refuses them too).
func TestFault6WrongSHA256(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 16, oddSizes)
	svc := startService(t, root)
	name := "os/Packages/g/gamma-0.9.rpm"
	dir := t.TempDir()
	u, _ := mirror.FileURL(svc.url, name)
	list := fmt.Sprintf("%s %s sha256:%s\n", u, filepath.Join(dir, outName(name)), strings.Repeat("ab", 32))
	for _, fallback := range []string{"false", "true"} {
		r := e2e.NewHost(t).Get(list, "--service", svc.url, "--http-fallback="+fallback, "--batch", "-")
		matrixRow(t, "6 wrong sha256", "fallback "+fallback, r)
		mustFail(t, r, 20*time.Second, "sha256", outName(name))
		noLeftovers(t, root, dir, nil)
	}
}

// status asks the agent of a state dir for its status; nil if none runs.
// Row 7: the agent is SIGKILLed mid-download: the invocation fails at once
// with nothing placed; the next one starts a new agent over the stale socket
// and the partial data (rehashed) and completes.
func TestFault7AgentKilled(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 17, map[string]int{"os/big-1.rpm": 1_500_000, "os/big-2.rpm": 1_000_000})
	b := []string{"os/big-1.rpm", "os/big-2.rpm"}
	svc := startService(t, root, "--origin-rate-limit", "400000")
	h := e2e.NewHost(t)
	dir := t.TempDir()
	list := batchList(t, svc, root, dir, b)
	done := make(chan e2e.Result, 1)
	go func() {
		done <- h.Get(list, "--service", svc.url, "--http-fallback=false", "--direct=false", "--batch", "-")
	}()
	var pid int
	testkit.WaitFor(t, "the download to start", 30*time.Second, func() bool {
		if st := h.Status(); st != nil && st["from_webseed"] > 0 {
			pid = int(st["pid"])
		}
		return pid != 0
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	r := <-done
	r.Wall = time.Since(killed)
	matrixRow(t, "7 agent SIGKILLed", "running fetch (time after the kill)", r)
	mustFail(t, r, 10*time.Second, "agent")
	noLeftovers(t, root, dir, nil)
	if _, err := os.Stat(filepath.Join(h.State, "agent.sock")); err != nil {
		t.Logf("no stale socket left (%v)", err)
	}
	before := svc.stats(t)["file_bytes_sent"]
	r = h.Get(list, "--service", svc.url, "--http-fallback=false", "--batch", "-")
	matrixRow(t, "7 agent SIGKILLed", "next invocation recovers", r)
	if r.Code != 0 {
		t.Fatalf("after the kill: exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, b)
	t.Logf("recovery fetched %.0f of %d bytes from the origin", svc.stats(t)["file_bytes_sent"]-before, 2_500_000)
}

// mountTmpfs mounts a tmpfs of size bytes at a new directory; it skips the
// test when mounting is not permitted, except in CI.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	parent := t.TempDir()
	os.Chmod(filepath.Dir(parent), 0o755) // reachable by the agent user
	dir := filepath.Join(parent, "tmpfs")
	os.Mkdir(dir, 0o755)
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput()
	if err != nil {
		testkit.Missing(t, "cannot mount a tmpfs here (%v %s): the disk-full row needs root and mount permission", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Row 8: disk full at the destination: clear error, temporary files
// removed; disk full in the agent's state directory: the agent reports it
// at once (and drops the torrent), the fallback rescues.
func TestFault8DiskFull(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 18, map[string]int{"os/small.rpm": 100_000, "os/big.rpm": 3_000_000})
	b := []string{"os/small.rpm", "os/big.rpm"}
	svc := startService(t, root)
	t.Run("destination", func(t *testing.T) {
		dir := mountTmpfs(t, "2m")
		for _, fallback := range []string{"false", "true"} {
			r := e2e.NewHost(t).Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback="+fallback, "--batch", "-")
			matrixRow(t, "8 destination full", "fallback "+fallback, r)
			mustFail(t, r, 30*time.Second, "no space left on device")
			noLeftovers(t, root, dir, []string{"os/small.rpm"})
		}
	})
	t.Run("state dir", func(t *testing.T) {
		h := e2e.HostAt(t, mountTmpfs(t, "2m"))
		dir := t.TempDir()
		r := h.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--stall-timeout", "3s", "--http-fallback=false", "--direct=false", "--batch", "-")
		matrixRow(t, "8 state dir full", "fallback off", r)
		mustFail(t, r, 30*time.Second, "cannot store data", "no space left on device")
		noLeftovers(t, root, dir, nil)
		r = h.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--stall-timeout", "3s", "--direct=false", "--batch", "-")
		matrixRow(t, "8 state dir full", "fallback rescues", r)
		if r.Code != 0 || !r.Fallback {
			t.Fatalf("exit %d fallback=%v: %s", r.Code, r.Fallback, r.Stderr)
		}
		sameFiles(t, root, dir, b)
		// Space freed: the same agent starts the dropped torrent afresh.
		if out, err := exec.Command("mount", "-o", "remount,size=8m", h.State).CombinedOutput(); err != nil {
			t.Fatalf("remount: %v %s", err, out)
		}
		dir2 := t.TempDir()
		r = h.Get(batchList(t, svc, root, dir2, b), "--service", svc.url, "--http-fallback=false", "--batch", "-")
		matrixRow(t, "8 state dir full", "space freed, same agent completes", r)
		if r.Code != 0 {
			t.Fatalf("after freeing space: exit %d: %s", r.Code, r.Stderr)
		}
		sameFiles(t, root, dir2, b)
	})
}

// Row 9: eight concurrent invocations with overlapping batches on one host
// share one agent and all succeed.
func TestFault9ConcurrentInvocations(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 19, oddSizes)
	pool := names(oddSizes, "os/")
	svc := startService(t, root)
	h := e2e.NewHost(t)
	var wg sync.WaitGroup
	results := make([]e2e.Result, 8)
	dirs := make([]string, 8)
	batches := make([][]string, 8)
	for i := range results {
		dirs[i] = t.TempDir()
		batches[i] = []string{pool[i%len(pool)], pool[(i+1)%len(pool)], pool[(i+3)%len(pool)]}
		list := batchList(t, svc, root, dirs[i], batches[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.Get(list, "--service", svc.url, "--http-fallback=false", "--batch", "-")
		}()
	}
	wg.Wait()
	var slowest time.Duration
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("invocation %d: exit %d: %s", i, r.Code, r.Stderr)
			continue
		}
		sameFiles(t, root, dirs[i], batches[i])
		slowest = max(slowest, r.Wall)
	}
	log, _ := os.ReadFile(filepath.Join(h.State, "agent.log"))
	if n := bytes.Count(log, []byte("agent started")); n != 1 {
		t.Errorf("%d agents started for one state directory, want 1", n)
	}
	matrixRow(t, "9 eight concurrent invocations", "one agent, all succeed (slowest)", e2e.Result{Wall: slowest})
}

// runAs runs pkgtorrent-get as the unprivileged user u (the test runs as
// root) or as the current user.
func runAs(t *testing.T, u *user.User, state, stdin string, args ...string) e2e.Result {
	t.Helper()
	h := &e2e.Host{T: t, State: state}
	if u != nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		h.Cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return h.Run(stdin, args...)
}

// Row 10: the destination directory is not writable: a clear error before
// anything is downloaded; the destination is a symlink: it is replaced, its
// target untouched.
func TestFault10Destination(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 20, oddSizes)
	svc := startService(t, root)
	name := "os/Packages/g/gamma-0.9.rpm"
	t.Run("not writable", func(t *testing.T) {
		dir := t.TempDir()
		state := filepath.Join(t.TempDir(), "state")
		var u *user.User
		if os.Geteuid() == 0 {
			// Root ignores mode bits: run the client as an unprivileged
			// user, for whom dir (root's, 0755) is not writable.
			var err error
			if u, err = user.Lookup("nobody"); err != nil {
				t.Skipf("no user nobody to run the client as: %v", err)
			}
			uid, _ := strconv.Atoi(u.Uid)
			os.Chmod(filepath.Dir(dir), 0o755)
			os.Chmod(filepath.Dir(filepath.Dir(state)), 0o755)
			os.Chmod(filepath.Dir(state), 0o755)
			os.Mkdir(state, 0o755)
			os.Chown(state, uid, -1)
		} else {
			os.Chmod(dir, 0o555)
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
		}
		t.Cleanup(func() { runAs(t, u, state, "", "stop") })
		list := batchList(t, svc, root, dir, []string{name})
		before := svc.stats(t)["file_bytes_sent"]
		r := runAs(t, u, state, list, "--service", svc.url, "--batch", "-")
		matrixRow(t, "10 destination not writable", "fallback on", r)
		mustFail(t, r, 10*time.Second, "not writable", "permission denied")
		noLeftovers(t, root, dir, nil)
		if sent := svc.stats(t)["file_bytes_sent"] - before; sent != 0 {
			t.Errorf("%.0f bytes downloaded for a destination that cannot be written", sent)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		dir, elsewhere := t.TempDir(), t.TempDir()
		target := filepath.Join(elsewhere, "precious")
		os.WriteFile(target, []byte("do not overwrite"), 0o644)
		out := filepath.Join(dir, outName(name))
		if err := os.Symlink(target, out); err != nil {
			t.Fatal(err)
		}
		for _, fallback := range []string{"false", "true"} {
			if fallback == "true" {
				os.Remove(out)
				os.Symlink(target, out)
			}
			args := []string{"--service", svc.url, "--http-fallback=" + fallback, "--batch", "-"}
			if fallback == "true" {
				args[1] = deadURL(t) // torrent path down: the fallback places it
				args = append(args, "--mirror", svc.url)
			}
			r := e2e.NewHost(t).Get(batchList(t, svc, root, dir, []string{name}), args...)
			matrixRow(t, "10 destination is a symlink", "fallback "+fallback, r)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Stderr)
			}
			if fi, err := os.Lstat(out); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("destination is not a regular file: %v", err)
			}
			sameFiles(t, root, dir, []string{name})
			if b, _ := os.ReadFile(target); string(b) != "do not overwrite" {
				t.Fatalf("the symlink's target was overwritten")
			}
		}
	})
}

// A seeder the tracker still lists has gone without telling it (killed, or
// its machine lost power): the agent finds every listed peer unreachable
// and the webseeds join at once, not after the peer grace (before, with a
// peer grace longer than the client's stall timeout, the fetch failed).
func TestGoneSeeder(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 23, map[string]int{"os/a-1.rpm": 300_000, "os/b-1.rpm": 200_000})
	b := []string{"os/a-1.rpm", "os/b-1.rpm"}
	svc := startService(t, root)
	tb, err := api.Torrent(t.Context(), http.DefaultClient, svc.url, b)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := ametainfo.Load(bytes.NewReader(tb))
	if err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var id [20]byte
	copy(id[:], "-PK0001-gonegonegone")
	if err := tracker.AnnounceEvent(http.DefaultClient, api.AnnounceURL(svc.url), mi.HashInfoBytes(), id, port, "completed"); err != nil {
		t.Fatal(err)
	}
	h := e2e.NewHost(t)
	dir := t.TempDir()
	const grace = 30 * time.Second
	r := h.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", "--peer-grace", grace.String(), "--batch", "-")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, b)
	log, _ := os.ReadFile(filepath.Join(h.State, "agent.log"))
	if !bytes.Contains(log, []byte("the swarm's peers are unreachable")) {
		t.Errorf("the webseeds did not join for unreachable peers (peer grace %v); agent log:\n%s", grace, log)
	}
}
