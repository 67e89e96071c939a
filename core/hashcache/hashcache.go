// Package hashcache remembers the piece hashes of mirror files, so a file
// shared by many batches is read and hashed once rather than once per batch.
//
// An entry is keyed by the file's path and identity at hashing time (size,
// modification time, device and inode); any change to these is a miss and
// the file is hashed again.
package hashcache

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/pkgtorrent/pkgtorrent/core/metainfo"
)

// bufSize is the read buffer used while hashing.
const bufSize = 1 << 20

// readers recycles the read buffers: one per file hashed would be a 1 MiB
// allocation per file, and the garbage collector's work on them took as
// much CPU as the hashing in a cold build of many small files. A bounded
// free list, not a sync.Pool: the collector empties a pool at every cycle,
// and a 100 000-file build, collecting often, still allocated 25 GB.
var readers = make(chan *bufio.Reader, 16)

func getReader() *bufio.Reader {
	select {
	case br := <-readers:
		return br
	default:
		return bufio.NewReaderSize(nil, bufSize)
	}
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	select {
	case readers <- br:
	default:
	}
}

// maxAttempts bounds how often a file that keeps changing while it is hashed
// is hashed again before giving up.
const maxAttempts = 3

// ErrChanged is returned (wrapped) when a file kept changing while it was hashed.
var ErrChanged = errors.New("file changed while it was hashed")

// Cache is a per-file piece hash cache, safe for concurrent use. The zero
// value is ready to use.
type Cache struct {
	mu      sync.Mutex
	entries map[string]entry
	group   singleflight.Group

	// BytesRead counts file bytes read for hashing.
	BytesRead atomic.Int64
	// Hits counts calls answered from the cache without reading the file.
	Hits atomic.Int64
	// Misses counts calls that had to hash the file (at most one per
	// concurrent group of calls for the same file version).
	Misses atomic.Int64
}

type identity struct {
	size  int64
	mtime time.Time
	dev   uint64
	ino   uint64
}

type entry struct {
	id     identity
	hashes metainfo.Hashes
}

func identityOf(fi os.FileInfo) identity {
	id := identity{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// Hashes returns the piece hashes of the regular file at absPath and the
// file's information as of hashing. Symbolic links are followed; callers
// that must stay inside a directory use HashesIn.
func (c *Cache) Hashes(absPath string) (metainfo.Hashes, os.FileInfo, error) {
	if !filepath.IsAbs(absPath) {
		return metainfo.Hashes{}, nil, fmt.Errorf("hashing %q: path is not absolute", absPath)
	}
	return c.hashes(absPath,
		func() (os.FileInfo, error) { return os.Stat(absPath) },
		func() (*os.File, error) { return os.Open(absPath) })
}

// HashesIn is Hashes for the file name inside root: the file is opened
// through root, so it cannot be reached through a symbolic link that leaves
// root.
func (c *Cache) HashesIn(root *os.Root, name string) (metainfo.Hashes, os.FileInfo, error) {
	key := filepath.Join(root.Name(), filepath.FromSlash(name))
	return c.hashes(key,
		func() (os.FileInfo, error) { return root.Stat(name) },
		func() (*os.File, error) { return root.Open(name) })
}

func (c *Cache) hashes(key string, stat func() (os.FileInfo, error), open func() (*os.File, error)) (metainfo.Hashes, os.FileInfo, error) {
	for attempt := 1; ; attempt++ {
		h, fi, err := c.try(key, stat, open)
		if errors.Is(err, ErrChanged) && attempt < maxAttempts {
			continue
		}
		return h, fi, err
	}
}

type result struct {
	hashes metainfo.Hashes
	info   os.FileInfo
}

func (c *Cache) try(key string, stat func() (os.FileInfo, error), open func() (*os.File, error)) (metainfo.Hashes, os.FileInfo, error) {
	// The file's identity alone answers a cached entry, without opening
	// the file; and a file that is not regular is never opened (a FIFO
	// could block).
	sfi, err := stat()
	if err != nil {
		return metainfo.Hashes{}, nil, fmt.Errorf("hashing %s: %w", key, err)
	}
	if !sfi.Mode().IsRegular() {
		return metainfo.Hashes{}, nil, fmt.Errorf("hashing %s: not a regular file", key)
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && e.id == identityOf(sfi) {
		c.Hits.Add(1)
		return e.hashes, sfi, nil
	}
	f, err := open()
	if err != nil {
		return metainfo.Hashes{}, nil, fmt.Errorf("hashing %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return metainfo.Hashes{}, nil, fmt.Errorf("hashing %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return metainfo.Hashes{}, nil, fmt.Errorf("hashing %s: not a regular file", key)
	}
	id := identityOf(fi)
	c.mu.Lock()
	e, ok = c.entries[key]
	c.mu.Unlock()
	if ok && e.id == id {
		c.Hits.Add(1)
		return e.hashes, fi, nil
	}
	// Concurrent callers for the same file version share one hashing; the
	// first caller's open file is the one read.
	flight := fmt.Sprintf("%s\x00%d\x00%d\x00%d\x00%d", key, id.size, id.mtime.UnixNano(), id.dev, id.ino)
	v, err, _ := c.group.Do(flight, func() (any, error) {
		c.mu.Lock()
		e, ok := c.entries[key]
		c.mu.Unlock()
		if ok && e.id == id {
			c.Hits.Add(1)
			return result{e.hashes, fi}, nil
		}
		c.Misses.Add(1)
		h, err := c.hashFile(key, f, fi)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.entries == nil {
			c.entries = make(map[string]entry)
		}
		c.entries[key] = entry{id: id, hashes: h}
		c.mu.Unlock()
		return result{h, fi}, nil
	})
	if err != nil {
		return metainfo.Hashes{}, nil, err
	}
	r := v.(result)
	return r.hashes, r.info, nil
}

func (c *Cache) hashFile(key string, f *os.File, fi os.FileInfo) (metainfo.Hashes, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return metainfo.Hashes{}, fmt.Errorf("hashing %s: %w", key, err)
	}
	br := getReader()
	br.Reset(&countingReader{r: f, n: &c.BytesRead})
	h, err := metainfo.HashReader(br, fi.Size())
	putReader(br)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return metainfo.Hashes{}, fmt.Errorf("hashing %s: %w (shrank)", key, ErrChanged)
	}
	if err != nil {
		return metainfo.Hashes{}, fmt.Errorf("hashing %s: %w", key, err)
	}
	after, err := f.Stat()
	if err != nil {
		return metainfo.Hashes{}, fmt.Errorf("hashing %s: %w", key, err)
	}
	if identityOf(after) != identityOf(fi) {
		return metainfo.Hashes{}, fmt.Errorf("hashing %s: %w", key, ErrChanged)
	}
	return h, nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
