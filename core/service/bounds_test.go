package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// sparse creates the file rel under root with size bytes that take no disk
// space: hashing it costs CPU but no I/O.
func sparse(t *testing.T, root, rel string, size int64) {
	t.Helper()
	testkit.SparseFile(t, filepath.Join(root, filepath.FromSlash(rel)), size)
}

// waitStats polls the service's stats until cond holds.
func waitStats(t *testing.T, s *Service, what string, cond func(api.Stats) bool) api.Stats {
	t.Helper()
	var st api.Stats
	if !testkit.Poll(20*time.Second, func() bool { st = s.Stats(); return cond(st) }) {
		t.Fatalf("timed out waiting for %s: %+v", what, st)
	}
	return st
}

// postAsync POSTs the batch files with ctx and sends the outcome on the
// returned channel: the status code, or the client's error.
func postAsync(t *testing.T, ctx context.Context, base string, files []string) <-chan error {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", api.TorrentURL(base, digest(t, files)),
		bytes.NewReader(filesBody(files)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = errors.New(resp.Status)
			}
		}
		done <- err
	}()
	return done
}

// A client that abandons a POST stops its build: hashing a large file ends
// soon after, far from its end, and files already hashed stay cached.
func TestAbandonedBuildStops(t *testing.T) {
	const size = 16 << 30
	root := writeTree(t, map[string][]byte{"a.rpm": testkit.RandBytes(3*pl, 1)})
	sparse(t, root, "big.iso", size)
	s, base := start(t, Config{Root: root})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := postAsync(t, ctx, base, []string{"a.rpm", "big.iso"})
	waitStats(t, s, "a.rpm hashed and big.iso started", func(st api.Stats) bool {
		return st.HashCacheFiles == 1 && st.HashBytesRead > 3*pl
	})
	time.Sleep(300 * time.Millisecond) // the client gives up after a while
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned POST: %v", err)
	}
	waitStats(t, s, "the build to stop", func(st api.Stats) bool { return st.BuildsRunning == 0 && st.BuildsAbandoned == 1 })
	time.Sleep(100 * time.Millisecond)
	read := s.Stats().HashBytesRead
	time.Sleep(300 * time.Millisecond)
	st := s.Stats()
	if st.HashBytesRead != read || read > size/4 {
		t.Errorf("hashing went on after the client left: %d then %d bytes of %d", read, st.HashBytesRead, int64(size))
	}
	if st.TorrentsBuilt != 0 || st.HashCacheFiles != 1 {
		t.Errorf("after the abandoned build: %d torrents built, %d files cached; want 0 and 1 (a.rpm)", st.TorrentsBuilt, st.HashCacheFiles)
	}
	t.Logf("hashed %d of %d bytes before stopping", read, int64(size))

	// a.rpm's hashes were kept: a batch of it alone reads nothing.
	if r := post(t, base, []string{"a.rpm"}); r.code != 200 {
		t.Fatalf("POST a.rpm: %d %s", r.code, r.body)
	}
	if st := s.Stats(); st.HashBytesRead != read || st.HashCacheHits != 1 {
		t.Errorf("a.rpm was hashed again: %+v", st)
	}
}

// Builds run at most MaxBuilds at a time; a request waiting for a slot
// gives up when its client leaves, and a build shared by two clients goes
// on while one of them waits.
func TestBuildConcurrencyLimit(t *testing.T) {
	root := writeTree(t, map[string][]byte{"a.rpm": testkit.RandBytes(2*pl, 1), "b.rpm": testkit.RandBytes(pl+1, 2)})
	sparse(t, root, "big.iso", 16<<30)
	s, base := start(t, Config{Root: root, MaxBuilds: 1})

	// The only slot is taken by a long build.
	bigCtx, cancelBig := context.WithCancel(t.Context())
	defer cancelBig()
	bigDone := postAsync(t, bigCtx, base, []string{"big.iso"})
	waitStats(t, s, "the big build to hash", func(st api.Stats) bool { return st.BuildsRunning == 1 && st.HashBytesRead > 0 })

	// A small batch waits for it, and gives up when its client leaves.
	ctxA, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	doneA := postAsync(t, ctxA, base, []string{"a.rpm"})
	waitStats(t, s, "the small build to wait", func(st api.Stats) bool { return st.BuildsWaiting == 1 })
	select {
	case err := <-doneA:
		t.Fatalf("a second build ran beside the first with MaxBuilds 1: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if st := s.Stats(); st.BuildsRunning != 1 {
		t.Errorf("%d builds running, want 1", st.BuildsRunning)
	}
	cancelA()
	if err := <-doneA; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned waiting POST: %v", err)
	}
	waitStats(t, s, "the waiting build to give up", func(st api.Stats) bool { return st.BuildsWaiting == 0 && st.BuildsAbandoned == 1 })

	// Two clients wait for one build of b.rpm; one leaves, the other
	// gets the torrent once the slot is free.
	b := []string{"b.rpm"}
	ctx1, cancel1 := context.WithCancel(t.Context())
	defer cancel1()
	done1 := postAsync(t, ctx1, base, b)
	done2 := postAsync(t, t.Context(), base, b)
	waitStats(t, s, "both clients to wait", func(api.Stats) bool { return s.builds.Waiters(digest(t, b)) == 2 })
	cancel1()
	if err := <-done1; !errors.Is(err, context.Canceled) {
		t.Fatalf("first client of the shared build: %v", err)
	}
	if st := s.Stats(); st.BuildsWaiting != 1 || st.BuildsAbandoned != 1 {
		t.Errorf("after one of two clients left: %+v, want the build still waiting", st)
	}
	cancelBig()
	if err := <-bigDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned big POST: %v", err)
	}
	if err := <-done2; err != nil {
		t.Fatalf("second client of the shared build: %v", err)
	}
	st := waitStats(t, s, "the slot to be free", func(st api.Stats) bool { return st.BuildsRunning == 0 })
	if st.TorrentsBuilt != 1 || st.BuildsAbandoned != 2 || st.BuildsWaiting != 0 {
		t.Errorf("at the end: %+v; want 1 torrent built, 2 builds abandoned", st)
	}
}

// The hash cache stays within HashCacheBytes, evicting files.
func TestHashCacheBounded(t *testing.T) {
	files := map[string][]byte{}
	var names []string
	for i := range 20 {
		name := "p/" + string(rune('a'+i)) + ".rpm"
		files[name] = testkit.RandBytes(8*pl, uint64(i))
		names = append(names, name)
	}
	root := writeTree(t, files)
	const bound = 2000
	s, base := start(t, Config{Root: root, HashCacheBytes: bound})
	for _, n := range names {
		if r := post(t, base, []string{n}); r.code != 200 {
			t.Fatalf("POST %s: %d %s", n, r.code, r.body)
		}
		if st := s.Stats(); st.HashCacheBytes > bound {
			t.Fatalf("hash cache at %d bytes, bound %d", st.HashCacheBytes, bound)
		}
	}
	st := s.Stats()
	if st.HashCacheFiles == 0 || st.HashCacheFiles >= int64(len(names)) || st.HashCacheEvictions != int64(len(names))-st.HashCacheFiles {
		t.Errorf("hash cache: %d files, %d evictions of %d hashed", st.HashCacheFiles, st.HashCacheEvictions, len(names))
	}
}

// rawGet sends a GET for path on a new connection and returns it unread.
func rawGet(t *testing.T, base, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET /"+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// readToClose reads c until the server closes it (or resets it) and returns
// the bytes read; it fails the test if c stays open for 20 s.
func readToClose(t *testing.T, c net.Conn) int64 {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after 20 s (%d bytes read)", n)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading: %v", err)
	}
	return n
}

// A client that requests a large file and never reads is dropped after
// WriteTimeout: reading afterwards gets what the socket buffers held, not
// the whole file.
func TestStalledReaderDropped(t *testing.T) {
	const size = 256 << 20
	root := t.TempDir()
	sparse(t, root, "big.iso", size)
	s, base := start(t, Config{Root: root, WriteTimeout: 300 * time.Millisecond})
	c := rawGet(t, base, "big.iso")
	waitStats(t, s, "the download to start", func(st api.Stats) bool { return st.FileBytesSent > 0 })
	time.Sleep(2 * time.Second)
	sent := s.Stats().FileBytesSent
	n := readToClose(t, c)
	if n >= size {
		t.Errorf("the stalled client got the whole file (%d bytes) after the write timeout", n)
	}
	if st := s.Stats(); st.FileBytesSent != sent {
		t.Errorf("the server went on sending after the write timeout: %d then %d bytes", sent, st.FileBytesSent)
	}
	t.Logf("dropped after %d of %d bytes", n, int64(size))
}

// WriteTimeout bounds each write, not the response: a download that takes
// many times WriteTimeout (here held back by the origin rate limit) but
// keeps moving completes.
func TestSlowDownloadCompletes(t *testing.T) {
	data := testkit.RandBytes(1<<20, 5)
	root := writeTree(t, map[string][]byte{"f.rpm": data})
	const timeout = 200 * time.Millisecond
	_, base := start(t, Config{Root: root, WriteTimeout: timeout, OriginRateLimit: 1 << 20})
	begin := time.Now()
	r := do(t, "GET", base+"f.rpm", "", nil)
	took := time.Since(begin)
	if r.code != 200 || !bytes.Equal(r.body, data) {
		t.Fatalf("GET: %d, %d of %d bytes", r.code, len(r.body), len(data))
	}
	if took < 3*timeout {
		t.Fatalf("the download took %s only: the test shows nothing", took)
	}
}

// An idle kept-alive connection is closed after IdleTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	root := writeTree(t, map[string][]byte{"f.rpm": []byte("f")})
	_, base := start(t, Config{Root: root, IdleTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /f.rpm HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The response, then EOF once the connection has been idle too long.
	n := readToClose(t, c)
	if n == 0 {
		t.Error("no response")
	}
}
