// Package hashcache remembers the piece hashes of mirror files, so a file
// shared by many batches is read and hashed once rather than once per batch.
//
// An entry is keyed by the file's path and identity at hashing time (size,
// modification time, device and inode); any change to these is a miss and
// the file is hashed again. With Cache.MaxBytes set, the least recently used
// entries are evicted to stay within it.
package hashcache

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pkgtorrent/pkgtorrent/core/internal/flight"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
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

// entryOverhead is the memory an entry costs besides its path and piece
// hashes (map slot, list element, identity), as counted against MaxBytes.
const entryOverhead = 160

// ErrChanged is returned (wrapped) when a file kept changing while it was hashed.
var ErrChanged = errors.New("file changed while it was hashed")

// Cache is a per-file piece hash cache, safe for concurrent use. The zero
// value is ready to use and unbounded.
type Cache struct {
	// MaxBytes bounds the memory of the entries (paths, piece hashes and
	// a fixed overhead each); beyond it the least recently used entries are
	// evicted. Zero is unbounded. Set it before the first use.
	MaxBytes int64

	mu      sync.Mutex
	entries map[string]*list.Element // of *entry
	lru     list.List                // most recently used first
	bytes   int64
	group   flight.Group[flightKey, result]

	// BytesRead counts file bytes read for hashing.
	BytesRead atomic.Int64
	// Hits counts calls answered from the cache without reading the file.
	Hits atomic.Int64
	// Misses counts calls that had to hash the file (at most one per
	// concurrent group of calls for the same file version).
	Misses atomic.Int64
	// Evictions counts entries dropped to stay within MaxBytes.
	Evictions atomic.Int64
}

type identity struct {
	size  int64
	mtime int64 // nanoseconds since the epoch
	dev   uint64
	ino   uint64
}

type entry struct {
	key    string
	id     identity
	hashes torrentfile.Hashes
	cost   int64
	// inRoot is set for a file reached through a root (HashesIn).
	inRoot bool
}

// flightKey identifies one version of one file: concurrent callers for it
// share one hashing.
type flightKey struct {
	key string
	id  identity
}

func identityOf(fi os.FileInfo) identity {
	id := identity{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Bytes returns the memory of the entries as counted against MaxBytes.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// lookup returns the cached hashes of key if its entry has identity id
// (and, with inRoot, was reached through a root), marking the entry as
// recently used.
func (c *Cache) lookup(key string, id identity, inRoot bool) (torrentfile.Hashes, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return torrentfile.Hashes{}, false
	}
	e := el.Value.(*entry)
	if e.id != id || inRoot && !e.inRoot {
		return torrentfile.Hashes{}, false
	}
	c.lru.MoveToFront(el)
	return e.hashes, true
}

// store caches h as the hashes of key at identity id, replacing any older
// entry for key, and evicts the least recently used entries beyond
// MaxBytes. An entry larger than MaxBytes on its own is not kept.
func (c *Cache) store(key string, id identity, h torrentfile.Hashes, inRoot bool) {
	e := &entry{key: key, id: id, hashes: h, cost: int64(len(key)+len(h.Pieces)) + entryOverhead, inRoot: inRoot}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]*list.Element)
	}
	if old, ok := c.entries[key]; ok {
		c.remove(old)
	}
	if c.MaxBytes > 0 && e.cost > c.MaxBytes {
		return
	}
	c.entries[key] = c.lru.PushFront(e)
	c.bytes += e.cost
	for c.MaxBytes > 0 && c.bytes > c.MaxBytes {
		c.remove(c.lru.Back())
		c.Evictions.Add(1)
	}
}

// remove drops an entry; c.mu is held.
func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.entries, e.key)
	c.bytes -= e.cost
}

// Hashes returns the piece hashes of the regular file at absPath and the
// file's information as of hashing. Symbolic links are followed; callers
// that must stay inside a directory use HashesIn.
//
// Hashing stops with ctx's error once ctx is done, unless other callers
// still wait for the same file (see HashesIn).
func (c *Cache) Hashes(ctx context.Context, absPath string) (torrentfile.Hashes, os.FileInfo, error) {
	if !filepath.IsAbs(absPath) {
		return torrentfile.Hashes{}, nil, fmt.Errorf("hashing %q: path is not absolute", absPath)
	}
	return c.hashes(ctx, absPath, false,
		func() (os.FileInfo, error) { return os.Stat(absPath) },
		func() (*os.File, error) { return os.Open(absPath) })
}

// HashesIn is Hashes for the file name inside root: the file is opened
// through root, so it cannot be reached through a symbolic link that leaves
// root.
//
// Concurrent calls for the same version of a file share one hashing, which
// goes on while any of them waits; once all their contexts are done it
// stops, and nothing is cached for that file.
func (c *Cache) HashesIn(ctx context.Context, root *os.Root, name string) (torrentfile.Hashes, os.FileInfo, error) {
	key := filepath.Join(root.Name(), filepath.FromSlash(name))
	// A cached file is answered from one stat of its path: resolving the
	// name through root takes system calls per directory level, most of a
	// cached build's time. This is safe without root: the hit needs an
	// entry stored for a file reached through root, and the same device,
	// inode, size and modification time, i.e. that very file.
	if fi, err := os.Stat(key); err == nil && fi.Mode().IsRegular() {
		if h, ok := c.lookup(key, identityOf(fi), true); ok {
			c.Hits.Add(1)
			return h, fi, nil
		}
	}
	return c.hashes(ctx, key, true,
		func() (os.FileInfo, error) { return root.Stat(name) },
		func() (*os.File, error) { return root.Open(name) })
}

func (c *Cache) hashes(ctx context.Context, key string, inRoot bool, stat func() (os.FileInfo, error), open func() (*os.File, error)) (torrentfile.Hashes, os.FileInfo, error) {
	for attempt := 1; ; attempt++ {
		h, fi, err := c.try(ctx, key, inRoot, stat, open)
		if errors.Is(err, ErrChanged) && attempt < maxAttempts && ctx.Err() == nil {
			continue
		}
		return h, fi, err
	}
}

type result struct {
	hashes torrentfile.Hashes
	info   os.FileInfo
}

func (c *Cache) try(ctx context.Context, key string, inRoot bool, stat func() (os.FileInfo, error), open func() (*os.File, error)) (torrentfile.Hashes, os.FileInfo, error) {
	// The file's identity alone answers a cached entry, without opening
	// the file; and a file that is not regular is never opened (a FIFO
	// could block).
	sfi, err := stat()
	if err != nil {
		return torrentfile.Hashes{}, nil, fmt.Errorf("hashing %s: %w", key, err)
	}
	if !sfi.Mode().IsRegular() {
		return torrentfile.Hashes{}, nil, fmt.Errorf("hashing %s: not a regular file", key)
	}
	id := identityOf(sfi)
	if h, ok := c.lookup(key, id, false); ok {
		c.Hits.Add(1)
		return h, sfi, nil
	}
	// Concurrent callers for the same file version share one hashing,
	// which opens the file itself: it may outlive the caller that started
	// it, as long as another one waits.
	r, err := c.group.Do(ctx, flightKey{key, id}, func(ctx context.Context) (result, error) {
		if h, ok := c.lookup(key, id, false); ok {
			c.Hits.Add(1)
			return result{h, sfi}, nil
		}
		f, err := open()
		if err != nil {
			return result{}, fmt.Errorf("hashing %s: %w", key, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return result{}, fmt.Errorf("hashing %s: %w", key, err)
		}
		if !fi.Mode().IsRegular() {
			return result{}, fmt.Errorf("hashing %s: not a regular file", key)
		}
		if identityOf(fi) != id {
			return result{}, fmt.Errorf("hashing %s: %w (replaced before it was opened)", key, ErrChanged)
		}
		c.Misses.Add(1)
		h, err := c.hashFile(ctx, key, f, fi)
		if err != nil {
			return result{}, err
		}
		c.store(key, id, h, inRoot)
		return result{h, fi}, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return torrentfile.Hashes{}, nil, fmt.Errorf("hashing %s: %w", key, err)
		}
		return torrentfile.Hashes{}, nil, err
	}
	return r.hashes, r.info, nil
}

func (c *Cache) hashFile(ctx context.Context, key string, f *os.File, fi os.FileInfo) (torrentfile.Hashes, error) {
	br := getReader()
	br.Reset(&countingReader{ctx: ctx, r: f, n: &c.BytesRead})
	h, err := torrentfile.HashReader(br, fi.Size())
	putReader(br)
	if ctx.Err() != nil {
		return torrentfile.Hashes{}, fmt.Errorf("hashing %s: stopped: %w", key, context.Cause(ctx))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return torrentfile.Hashes{}, fmt.Errorf("hashing %s: %w (shrank)", key, ErrChanged)
	}
	if err != nil {
		return torrentfile.Hashes{}, fmt.Errorf("hashing %s: %w", key, err)
	}
	after, err := f.Stat()
	if err != nil {
		return torrentfile.Hashes{}, fmt.Errorf("hashing %s: %w", key, err)
	}
	if identityOf(after) != identityOf(fi) {
		return torrentfile.Hashes{}, fmt.Errorf("hashing %s: %w", key, ErrChanged)
	}
	return h, nil
}

// countingReader counts the bytes read from r and fails once ctx is done,
// so that hashing stops within one read of its cancellation.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
