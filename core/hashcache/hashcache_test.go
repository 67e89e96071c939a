package hashcache

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/metainfo"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randBytes(n int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestMatchesHashReader(t *testing.T) {
	dir := t.TempDir()
	var c Cache
	const pl = metainfo.PieceLength
	for i, size := range []int64{0, 1, pl - 1, pl, pl + 1, 3*pl + 5} {
		data := randBytes(size, uint64(i))
		p := filepath.Join(dir, "f")
		writeFile(t, p, data)
		// A fresh mtime per file: the same path is reused.
		if err := os.Chtimes(p, time.Time{}, time.Unix(int64(1000+i), 0)); err != nil {
			t.Fatal(err)
		}
		got, fi, err := c.Hashes(p)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		want, err := metainfo.HashReader(bytes.NewReader(data), size)
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
	writeFile(t, p, randBytes(100_000, 1))
	var c Cache
	h1, _, err := c.Hashes(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BytesRead.Load(); got != 100_000 {
		t.Fatalf("BytesRead = %d after first call, want 100000", got)
	}
	h2, _, err := c.Hashes(p)
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
	data := randBytes(50_000, 2)
	writeFile(t, p, data)
	var c Cache
	if _, _, err := c.Hashes(p); err != nil {
		t.Fatal(err)
	}

	// Same size, new content and mtime.
	data2 := randBytes(50_000, 3)
	writeFile(t, p, data2)
	if err := os.Chtimes(p, time.Time{}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	h, _, err := c.Hashes(p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := metainfo.HashReader(bytes.NewReader(data2), int64(len(data2)))
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
	h, _, err = c.Hashes(p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ = metainfo.HashReader(bytes.NewReader(data3), int64(len(data3)))
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
	writeFile(t, p, randBytes(size, 4))
	var c Cache
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, _, err := c.Hashes(p); err != nil {
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
	if _, _, err := c.HashesIn(root, "ok"); err != nil {
		t.Errorf("ok: %v", err)
	}
	if _, _, err := c.HashesIn(root, "link"); err == nil {
		t.Error("link leaving the root was hashed")
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.HashesIn(root, "d"); err == nil {
		t.Error("directory was hashed")
	}
}
