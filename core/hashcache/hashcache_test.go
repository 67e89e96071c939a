package hashcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMatchesHashReader(t *testing.T) {
	dir := t.TempDir()
	var c Cache
	const pl = torrentfile.PieceLength
	for i, size := range []int64{0, 1, pl - 1, pl, pl + 1, 3*pl + 5} {
		data := testkit.RandBytes(size, uint64(i))
		p := filepath.Join(dir, "f")
		writeFile(t, p, data)
		// A fresh mtime per file: the same path is reused.
		if err := os.Chtimes(p, time.Time{}, time.Unix(int64(1000+i), 0)); err != nil {
			t.Fatal(err)
		}
		got, fi, err := c.Hashes(t.Context(), p)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		want, err := torrentfile.HashReader(bytes.NewReader(data), size)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("size %d: hashes differ from HashReader", size)
		}
		if fi.Size() != size {
			t.Errorf("size %d: FileInfo size %d", size, fi.Size())
		}
	}
}

func TestSecondCallReadsNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	writeFile(t, p, testkit.RandBytes(100_000, 1))
	var c Cache
	h1, _, err := c.Hashes(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BytesRead.Load(); got != 100_000 {
		t.Fatalf("BytesRead = %d after first call, want 100000", got)
	}
	h2, _, err := c.Hashes(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BytesRead.Load(); got != 100_000 {
		t.Errorf("BytesRead = %d after second call, want 100000", got)
	}
	if c.Hits.Load() != 1 || c.Misses.Load() != 1 {
		t.Errorf("hits %d misses %d, want 1 and 1", c.Hits.Load(), c.Misses.Load())
	}
	if !reflect.DeepEqual(h1, h2) {
		t.Error("cached hashes differ")
	}
}

func TestChangeInvalidates(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	data := testkit.RandBytes(50_000, 2)
	writeFile(t, p, data)
	var c Cache
	if _, _, err := c.Hashes(t.Context(), p); err != nil {
		t.Fatal(err)
	}

	// Same size, new content and mtime.
	data2 := testkit.RandBytes(50_000, 3)
	writeFile(t, p, data2)
	if err := os.Chtimes(p, time.Time{}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	h, _, err := c.Hashes(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := torrentfile.HashReader(bytes.NewReader(data2), int64(len(data2)))
	if !reflect.DeepEqual(h, want) {
		t.Error("mtime change: stale hashes returned")
	}
	if c.Misses.Load() != 2 {
		t.Errorf("misses = %d, want 2", c.Misses.Load())
	}

	// New size, mtime forced back to the previous value.
	fi, _ := os.Stat(p)
	data3 := append(data2, 1, 2, 3)
	writeFile(t, p, data3)
	if err := os.Chtimes(p, time.Time{}, fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	h, _, err = c.Hashes(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ = torrentfile.HashReader(bytes.NewReader(data3), int64(len(data3)))
	if !reflect.DeepEqual(h, want) {
		t.Error("size change: stale hashes returned")
	}
	if c.Misses.Load() != 3 {
		t.Errorf("misses = %d, want 3", c.Misses.Load())
	}
}

func TestConcurrentMissesHashOnce(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	const size = 4 << 20
	writeFile(t, p, testkit.RandBytes(size, 4))
	var c Cache
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, _, err := c.Hashes(t.Context(), p); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := c.BytesRead.Load(); got != size {
		t.Errorf("BytesRead = %d, want %d (one hashing)", got, size)
	}
	if c.Misses.Load() != 1 {
		t.Errorf("misses = %d, want 1", c.Misses.Load())
	}
}

func TestHashesInStaysInsideRoot(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), []byte("secret"))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok"), []byte("ok"))
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var c Cache
	if _, _, err := c.HashesIn(t.Context(), root, "ok"); err != nil {
		t.Errorf("ok: %v", err)
	}
	if _, _, err := c.HashesIn(t.Context(), root, "link"); err == nil {
		t.Error("link leaving the root was hashed")
	}
	// Hashes follows the link and caches the file under the same key;
	// HashesIn still answers nothing for it.
	if _, _, err := c.Hashes(t.Context(), filepath.Join(dir, "link")); err != nil {
		t.Fatalf("Hashes of the link: %v", err)
	}
	if _, _, err := c.HashesIn(t.Context(), root, "link"); err == nil {
		t.Error("link leaving the root was answered from the cache")
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.HashesIn(t.Context(), root, "d"); err == nil {
		t.Error("directory was hashed")
	}
}

func TestBoundedLRU(t *testing.T) {
	dir := t.TempDir()
	const size = 20 * torrentfile.PieceLength // 400 bytes of piece hashes
	var paths []string
	for i := range 10 {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		writeFile(t, p, testkit.RandBytes(size, uint64(10+i)))
		paths = append(paths, p)
	}
	cost := int64(len(paths[0])+20*20) + entryOverhead
	c := Cache{MaxBytes: 3 * cost}
	hash := func(p string) {
		t.Helper()
		if _, _, err := c.Hashes(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range paths {
		hash(p)
		hash(paths[0]) // keep the first file recently used
		if c.Bytes() > c.MaxBytes || c.Len() > 3 {
			t.Fatalf("after %s: %d entries, %d bytes, bound %d", filepath.Base(p), c.Len(), c.Bytes(), c.MaxBytes)
		}
	}
	if c.Len() != 3 || c.Evictions.Load() != 7 {
		t.Errorf("%d entries, %d evictions; want 3 and 7", c.Len(), c.Evictions.Load())
	}
	// The recently used first file stayed; the oldest others were evicted.
	read := c.BytesRead.Load()
	hash(paths[0])
	hash(paths[9])
	if got := c.BytesRead.Load(); got != read {
		t.Errorf("recently used files were hashed again (%d bytes)", got-read)
	}
	hash(paths[1])
	if got := c.BytesRead.Load(); got != read+size {
		t.Errorf("evicted file: read %d bytes, want %d", got-read, size)
	}

	// An entry larger than the whole bound is not kept.
	small := Cache{MaxBytes: 100}
	if _, _, err := small.Hashes(t.Context(), paths[0]); err != nil {
		t.Fatal(err)
	}
	if small.Len() != 0 || small.Bytes() != 0 {
		t.Errorf("oversized entry kept: %d entries, %d bytes", small.Len(), small.Bytes())
	}
}

func TestCanceledHashingStops(t *testing.T) {
	const size = 8 << 30
	p := filepath.Join(t.TempDir(), "sparse")
	testkit.SparseFile(t, p, size)
	var c Cache
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Hashes(ctx, p)
		errc <- err
	}()
	testkit.WaitFor(t, "hashing to start", 20*time.Second, func() bool { return c.BytesRead.Load() > 0 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Hashes after cancel: %v, want context.Canceled", err)
	}
	// The hashing goroutine outlives the caller by at most one read.
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the hashing to end", 20*time.Second, func() bool { return c.group.Waiters(flightKey{p, identityOf(fi)}) == 0 })
	time.Sleep(100 * time.Millisecond)
	read := c.BytesRead.Load()
	time.Sleep(200 * time.Millisecond)
	if got := c.BytesRead.Load(); got != read || got > size/4 {
		t.Errorf("hashing went on after cancel: %d then %d bytes read of %d", read, got, int64(size))
	}
	if c.Len() != 0 {
		t.Errorf("a canceled hashing was cached")
	}
}

func TestSharedHashingOutlivesOneCaller(t *testing.T) {
	const size = 128 << 20
	p := filepath.Join(t.TempDir(), "sparse")
	testkit.SparseFile(t, p, size)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	key := flightKey{p, identityOf(fi)}
	var c Cache
	ctx1, cancel1 := context.WithCancel(t.Context())
	err1 := make(chan error, 1)
	go func() {
		_, _, err := c.Hashes(ctx1, p)
		err1 <- err
	}()
	testkit.WaitFor(t, "the first caller to wait", 20*time.Second, func() bool { return c.group.Waiters(key) == 1 })
	res2 := make(chan error, 1)
	go func() {
		h, _, err := c.Hashes(t.Context(), p)
		if err == nil && h.Size != size {
			err = fmt.Errorf("hashes of size %d", h.Size)
		}
		res2 <- err
	}()
	testkit.WaitFor(t, "the second caller to join", 20*time.Second, func() bool { return c.group.Waiters(key) == 2 })
	cancel1()
	if err := <-err1; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: %v, want context.Canceled", err)
	}
	if err := <-res2; err != nil {
		t.Fatalf("second caller: %v", err)
	}
	if c.Misses.Load() != 1 || c.BytesRead.Load() != size {
		t.Errorf("%d misses, %d bytes read; want one hashing of %d bytes", c.Misses.Load(), c.BytesRead.Load(), size)
	}
}
