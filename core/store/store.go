// Package store is the agent's piece storage for batch torrents.
//
// Batch torrents pad every file to a piece boundary (see core/torrentfile), so
// every piece holds bytes of exactly one file followed by zeros. The store
// keeps one data file per distinct file content, named by a content key
// derived from the file's size and piece hashes: two batches that share a
// package share its data, and a file downloaded once is complete in every
// later torrent. Pad files are never written; reading them gives zeros.
//
// Completion is trusted only within one agent run: data found on disk from an
// earlier run is reported as unknown, so the engine hashes it before use.
package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// Store holds data files under one directory.
type Store struct {
	dir string

	mu    sync.Mutex
	files map[string]*dataFile // by content key

	// changes counts writes and releases of data files: Prune measures the
	// disk again only when something changed since it last found the store
	// under its cap.
	changes  atomic.Uint64
	pruneMu  sync.Mutex
	clean    bool   // under pruneMu: the last Prune ended under its cap
	cleanAt  uint64 // changes when that Prune measured
	cleanMax int64
	cleanUse int64
	walks    int // measurements (for tests)

	onComplete atomic.Pointer[func(key string, piece int)]
}

// OnComplete sets f to be called when a piece of a data file is marked
// complete (by any torrent using it), with the data file's content key and
// the piece's index in the file. f is called from the engine's hashing and
// must not block; the agent uses it to tell the other torrents holding the
// same file.
func (s *Store) OnComplete(f func(key string, piece int)) { s.onComplete.Store(&f) }

// Holds reports whether the store has data for the file content of sp:
// open by a torrent now, or on disk from before.
func (s *Store) Holds(sp torrentfile.Span) bool {
	key := ContentKey(sp.Length, sp.Hashes, sp.Unpadded)
	s.mu.Lock()
	df := s.files[key]
	s.mu.Unlock()
	if df != nil {
		return true
	}
	fi, err := os.Lstat(filepath.Join(s.dir, key[:2], key))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// New returns a store keeping its data under dir.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating store directory: %w", err)
	}
	return &Store{dir: dir, files: map[string]*dataFile{}}, nil
}

// Dir is the directory the store keeps its data in.
func (s *Store) Dir() string { return s.dir }

// dataFile is the on-disk copy of one file content, shared by torrents.
type dataFile struct {
	s       *Store
	changes *atomic.Uint64 // the store's
	key     string
	path    string
	size    int64
	pieces  int

	mu       sync.Mutex
	refs     int
	f        *os.File
	complete []bool // per piece of the file; valid while stamp matches
	stamp    stamp  // size and mtime when a piece was last marked complete
}

type stamp struct {
	size  int64
	mtime int64
}

// ContentKey returns the key of a file content: hex SHA-1 over its size,
// its piece hashes and whether its last piece is hashed unpadded (the file
// is last in its torrent). Without the last, a crafted torrent could name
// a file's unpadded hashes as padded ones: the engine would find the last
// piece wrong and rewrite it in the data file every other torrent shares.
func ContentKey(size int64, pieceHashes []byte, unpadded bool) string {
	h := sha1.New()
	fmt.Fprintf(h, "%d\n", size)
	h.Write(pieceHashes)
	if unpadded {
		io.WriteString(h, "unpadded\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fileSpan is a non-pad file of a torrent as the store sees it.
type fileSpan struct {
	df         *dataFile
	firstPiece int
}

// Torrent is the layout of one opened torrent.
type Torrent struct {
	s      *Store
	spans  []fileSpan // ordered by firstPiece
	byPath map[string]pathSpan
}

// pathSpan is what the torrent says of one of its files.
type pathSpan struct {
	df       *dataFile
	hashes   []byte
	unpadded bool
}

// OpenTorrent implements storage.ClientImpl.
func (s *Store) OpenTorrent(_ context.Context, info *metainfo.Info, _ metainfo.Hash) (storage.TorrentImpl, error) {
	t, err := s.Layout(info)
	if err != nil {
		return storage.TorrentImpl{}, err
	}
	return storage.TorrentImpl{
		Piece: t.piece,
		Close: t.Close,
	}, nil
}

// Layout maps a batch torrent's pieces onto the store's data files and takes
// a reference on each; Close releases them.
func (s *Store) Layout(info *metainfo.Info) (*Torrent, error) {
	spans, err := torrentfile.Layout(info)
	if err != nil {
		return nil, err
	}
	t := &Torrent{s: s, byPath: map[string]pathSpan{}}
	for _, sp := range spans {
		// The last file of a batch is unpadded; its key says so, so it only
		// matches other unpadded copies.
		df := s.acquire(ContentKey(sp.Length, sp.Hashes, sp.Unpadded), sp.Length, len(sp.Hashes)/20)
		t.spans = append(t.spans, fileSpan{df: df, firstPiece: sp.FirstPiece})
		t.byPath[sp.Path] = pathSpan{df, sp.Hashes, sp.Unpadded}
	}
	return t, nil
}

func (s *Store) acquire(key string, size int64, pieces int) *dataFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	df := s.files[key]
	if df == nil {
		df = &dataFile{
			s:       s,
			changes: &s.changes,
			key:     key,
			path:    filepath.Join(s.dir, key[:2], key),
			size:    size,
			pieces:  pieces,
		}
		s.files[key] = df
	}
	df.mu.Lock()
	df.refs++
	df.mu.Unlock()
	return df
}

// SpanKey is where a torrent's file lies: the content key of its data file
// and the torrent's index of the file's first piece.
type SpanKey struct {
	Key        string
	FirstPiece int
}

// Keys lists the torrent's files as SpanKeys, in piece order.
func (t *Torrent) Keys() []SpanKey {
	keys := make([]SpanKey, len(t.spans))
	for i, sp := range t.spans {
		keys[i] = SpanKey{sp.df.key, sp.firstPiece}
	}
	return keys
}

// Close releases the torrent's data files.
func (t *Torrent) Close() error {
	var errs []error
	for _, sp := range t.spans {
		errs = append(errs, t.s.release(sp.df))
	}
	t.spans = nil
	return errors.Join(errs...)
}

func (s *Store) release(df *dataFile) error {
	s.changes.Add(1)
	df.mu.Lock()
	defer df.mu.Unlock()
	df.refs--
	if df.refs > 0 || df.f == nil {
		return nil
	}
	err := df.f.Close()
	df.f = nil
	return err
}

// DataPath returns the data file holding the torrent file at the
// slash-separated path p.
func (t *Torrent) DataPath(p string) (string, bool) {
	ps, ok := t.byPath[p]
	if !ok {
		return "", false
	}
	return ps.df.path, true
}

// Held returns the torrent's files whose data files are complete (see
// Complete), by path, with their data files.
func (t *Torrent) Held() map[string]string {
	held := map[string]string{}
	for p, ps := range t.byPath {
		if t.s.Complete(ps.df.path) {
			held[p] = ps.df.path
		}
	}
	return held
}

// importChunk is how many bytes Import reads and writes at a time.
const importChunk = 64 * torrentfile.PieceLength

// Import writes the content of the torrent's file p, read from r, into its
// data file, checking every piece against the torrent's hash as it goes,
// and marks the pieces complete: every torrent holding the file then
// serves them (OnComplete). It stops at the first piece that does not
// match (the pieces before it stay complete), and fails on content of
// another size. A data file already complete is left as it is. It returns
// the bytes written.
func (t *Torrent) Import(p string, r io.Reader) (written int64, err error) {
	ps, ok := t.byPath[p]
	if !ok {
		return 0, fmt.Errorf("import: %s is not in the torrent", p)
	}
	df := ps.df
	if t.s.Complete(df.path) {
		return 0, nil
	}
	buf := make([]byte, min(importChunk, max(df.size, 1)))
	for off := int64(0); off < df.size; {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), df.size-off)])
		if err != nil {
			return written, fmt.Errorf("import %s: reading at %d: %w", p, off, err)
		}
		first := int(off / torrentfile.PieceLength)
		good := 0
		for good < n {
			end := min(good+torrentfile.PieceLength, n)
			idx := first + good/torrentfile.PieceLength
			last := off+int64(end) == df.size
			sum := torrentfile.PieceHash(buf[good:end], last && ps.unpadded)
			if !bytes.Equal(sum[:], ps.hashes[20*idx:20*idx+20]) {
				break
			}
			good = end
		}
		if good > 0 {
			if err := df.writeAt(buf[:good], off); err != nil {
				return written, fmt.Errorf("import %s: %w", p, err)
			}
			written += int64(good)
			df.markRange(first, first+(good+torrentfile.PieceLength-1)/torrentfile.PieceLength)
		}
		if good < n {
			return written, fmt.Errorf("import %s: piece %d does not match the torrent", p, first+good/torrentfile.PieceLength)
		}
		off += int64(n)
	}
	if n, _ := r.Read(buf[:1]); n > 0 {
		return written, fmt.Errorf("import %s: more than the torrent's %d bytes", p, df.size)
	}
	return written, nil
}

func (t *Torrent) piece(p metainfo.Piece) storage.PieceImpl {
	i := p.Index()
	// The span whose firstPiece is the largest not above i.
	lo, hi := 0, len(t.spans)
	for lo < hi {
		m := (lo + hi) / 2
		if t.spans[m].firstPiece <= i {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return errPiece{fmt.Errorf("piece %d is in no file", i)}
	}
	sp := t.spans[lo-1]
	idx := i - sp.firstPiece
	if idx >= sp.df.pieces {
		// A piece made only of padding cannot occur: pads are shorter than a piece.
		return errPiece{fmt.Errorf("piece %d is in no file", i)}
	}
	return &piece{df: sp.df, idx: idx}
}

type piece struct {
	df  *dataFile
	idx int
}

// span returns the file offset and length of the piece's file data.
func (p *piece) span() (int64, int64) {
	off := int64(p.idx) * torrentfile.PieceLength
	return off, min(torrentfile.PieceLength, p.df.size-off)
}

func (p *piece) ReadAt(b []byte, off int64) (int, error) {
	start, n := p.span()
	f, err := p.df.open()
	if err != nil {
		return 0, err
	}
	var done int
	if off < n {
		m := min(int64(len(b)), n-off)
		r, err := f.ReadAt(b[:m], start+off)
		if err != nil && !(errors.Is(err, io.EOF) && r == int(m)) {
			return r, fmt.Errorf("reading %s: %w", p.df.path, err)
		}
		done = r
	}
	// The rest of the piece is padding.
	clear(b[done:])
	return len(b), nil
}

func (p *piece) WriteAt(b []byte, off int64) (int, error) {
	start, n := p.span()
	if off >= n {
		return len(b), nil // padding: never stored
	}
	m := min(int64(len(b)), n-off)
	if err := p.df.writeAt(b[:m], start+off); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *piece) MarkComplete() error    { return p.df.mark(p.idx, true) }
func (p *piece) MarkNotComplete() error { return p.df.mark(p.idx, false) }

func (p *piece) Completion() storage.Completion {
	return p.df.completion(p.idx)
}

// open returns the data file, creating it if needed.
func (df *dataFile) open() (*os.File, error) {
	df.mu.Lock()
	defer df.mu.Unlock()
	return df.openLocked()
}

func (df *dataFile) openLocked() (*os.File, error) {
	if df.f != nil {
		return df.f, nil
	}
	// The directory usually exists: try the file first, make the
	// directory only when it is missing.
	f, err := os.OpenFile(df.path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(df.path), 0o755); err != nil {
			return nil, fmt.Errorf("creating data directory: %w", err)
		}
		f, err = os.OpenFile(df.path, os.O_RDWR|os.O_CREATE, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("opening data file: %w", err)
	}
	df.f = f
	return f, nil
}

// writeAt writes b at off and records the write as our own, so that only
// writes by others make the completion state stale. Both happen under the
// lock: a completion check between them would take our write for someone
// else's (and a torrent sharing the file would see its verified data as
// changed). A data file removed behind our back is written anew (second
// attempt).
func (df *dataFile) writeAt(b []byte, off int64) error {
	df.changes.Add(1)
	df.mu.Lock()
	defer df.mu.Unlock()
	for range 2 {
		f, err := df.openLocked()
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(b, off); err != nil {
			return fmt.Errorf("writing %s: %w", df.path, err)
		}
		// The descriptor's stat (no path lookup); a file removed behind
		// our back has no link left.
		if fi, err := f.Stat(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Nlink > 0 {
				df.stamp = stamp{fi.Size(), fi.ModTime().UnixNano()}
				return nil
			}
		}
		df.complete = nil
		df.f.Close()
		df.f = nil
	}
	return fmt.Errorf("writing %s: the file keeps disappearing", df.path)
}

func statOf(path string) (stamp, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, false
	}
	return stamp{fi.Size(), fi.ModTime().UnixNano()}, true
}

func (df *dataFile) mark(idx int, ok bool) error {
	df.mu.Lock()
	defer df.mu.Unlock()
	if df.complete == nil {
		df.complete = make([]bool, df.pieces)
	}
	df.complete[idx] = ok
	df.stamp, _ = statOf(df.path)
	if f := df.s.onComplete.Load(); ok && f != nil {
		(*f)(df.key, idx)
	}
	return nil
}

// markRange marks the pieces [from, to) complete, with one stat.
func (df *dataFile) markRange(from, to int) {
	df.mu.Lock()
	defer df.mu.Unlock()
	if df.complete == nil {
		df.complete = make([]bool, df.pieces)
	}
	for i := from; i < to; i++ {
		df.complete[i] = true
	}
	df.stamp, _ = statOf(df.path)
	if f := df.s.onComplete.Load(); f != nil {
		for i := from; i < to; i++ {
			(*f)(df.key, i)
		}
	}
}

func (df *dataFile) completion(idx int) storage.Completion {
	df.mu.Lock()
	defer df.mu.Unlock()
	st, exists := statOf(df.path)
	if !exists {
		df.complete = nil
		if df.f != nil {
			// Removed behind our back: write a new file from now on.
			df.f.Close()
			df.f = nil
		}
		return storage.Completion{Ok: true, Complete: false}
	}
	if df.complete != nil && st == df.stamp {
		return storage.Completion{Ok: true, Complete: df.complete[idx]}
	}
	if df.complete != nil {
		// Changed behind our back (the file was written by someone else):
		// forget what we knew and let the engine hash it again.
		df.complete = nil
	}
	if st.size < int64(idx)*torrentfile.PieceLength+1 {
		return storage.Completion{Ok: true, Complete: false}
	}
	return storage.Completion{Ok: false}
}

// Complete reports whether every piece of the data file at path is known
// complete in this run and the file was not changed since.
func (s *Store) Complete(path string) bool {
	s.mu.Lock()
	df := s.files[filepath.Base(path)]
	s.mu.Unlock()
	if df == nil || df.path != path {
		return false
	}
	// The pieces first, in memory: a file still downloading costs no stat
	// (the agent asks of every file of a fetch several times a second).
	df.mu.Lock()
	marked := df.complete != nil && !slices.Contains(df.complete, false)
	df.mu.Unlock()
	if !marked {
		return false
	}
	// Then one stat for the whole file, not one per piece.
	st, exists := statOf(df.path)
	df.mu.Lock()
	defer df.mu.Unlock()
	return exists && df.complete != nil && st == df.stamp && !slices.Contains(df.complete, false)
}

// Prune deletes data files that no open torrent uses, least recently
// written first, until the store's disk use is at most max bytes, and
// returns the disk use left (blocks allocated, so sparse partial files count
// what they hold). Data files from earlier runs count as unused.
//
// While the store has not changed since a Prune found it under the same
// cap, Prune returns that measure without reading the disk again.
func (s *Store) Prune(max int64) (int64, error) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	at := s.changes.Load()
	if s.clean && s.cleanAt == at && s.cleanMax == max {
		return s.cleanUse, nil
	}
	s.clean = false
	s.walks++
	used, err := s.prune(max)
	if err == nil && used <= max {
		s.clean, s.cleanAt, s.cleanMax, s.cleanUse = true, at, max, used
	}
	return used, err
}

func (s *Store) prune(max int64) (int64, error) {
	type candidate struct {
		path  string
		used  int64
		mtime int64
	}
	var all []candidate
	var used int64
	err := filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		n := fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n = st.Blocks * 512
		}
		used += n
		all = append(all, candidate{p, n, fi.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return used, fmt.Errorf("measuring the store: %w", err)
	}
	if used <= max {
		return used, nil
	}
	slices.SortFunc(all, func(a, b candidate) int { return cmp.Compare(a.mtime, b.mtime) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range all {
		if used <= max {
			break
		}
		key := filepath.Base(c.path)
		if df := s.files[key]; df != nil && df.path == c.path {
			df.mu.Lock()
			inUse := df.refs > 0
			if !inUse {
				if df.f != nil {
					df.f.Close()
					df.f = nil
				}
				delete(s.files, key)
			}
			df.mu.Unlock()
			if inUse {
				continue
			}
		}
		if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return used, fmt.Errorf("pruning the store: %w", err)
		}
		used -= c.used
	}
	return used, nil
}

type errPiece struct{ err error }

func (e errPiece) ReadAt([]byte, int64) (int, error)  { return 0, e.err }
func (e errPiece) WriteAt([]byte, int64) (int, error) { return 0, e.err }
func (e errPiece) MarkComplete() error                { return e.err }
func (e errPiece) MarkNotComplete() error             { return e.err }
func (e errPiece) Completion() storage.Completion     { return storage.Completion{Err: e.err} }
