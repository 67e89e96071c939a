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
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

	mu     sync.Mutex
	files  map[string]*dataFile // by content key
	packs  map[string]*backing  // by pack name
	legacy bool                 // the directory has data files of one content each

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
	defer s.mu.Unlock()
	return s.files[key] != nil || s.legacyHolds(key)
}

// packDir is the directory of the pack files, beneath the store's.
const packDir = "packs"

// packAlign is where a content starts in a pack: at a multiple of it.
const packAlign = 4096

// New returns a store keeping its data under dir. It reads the indexes of
// the packs found there (see Layout): their contents are held.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating store directory: %w", err)
	}
	s := &Store{dir: dir, files: map[string]*dataFile{}, packs: map[string]*backing{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading store directory: %w", err)
	}
	for _, e := range ents {
		if len(e.Name()) == 2 && e.IsDir() {
			s.legacy = true
		}
	}
	idxs, _ := filepath.Glob(filepath.Join(dir, packDir, "*.idx"))
	for _, idx := range idxs {
		s.loadPack(strings.TrimSuffix(filepath.Base(idx), ".idx"))
	}
	return s, nil
}

// Dir is the directory the store keeps its data in.
func (s *Store) Dir() string { return s.dir }

// singlePath is where a data file of one content (the layout of stores
// before packs) lies.
func (s *Store) singlePath(key string) string { return filepath.Join(s.dir, key[:2], key) }

// backing is a file on disk holding the data of one or more contents: a
// pack, or a data file of one content.
type backing struct {
	path  string
	pack  string   // the pack's name; "" for a data file of one content
	keys  []string // a pack's contents
	index []byte   // a pack's index, as written beside it
	fresh bool     // a pack made in this run: holds nothing from before

	mu       sync.Mutex
	refs     int // references of open torrents to its contents
	f        *os.File
	stamp    stamp  // size and mtime after our last write or mark
	inflight int    // our writes under way
	gen      uint64 // counts changes made behind our back
}

// dataFile is the data of one file content, shared by torrents: the bytes
// [base, base+size) of its backing.
type dataFile struct {
	s       *Store
	changes *atomic.Uint64 // the store's
	key     string
	b       *backing
	base    int64
	size    int64
	pieces  int

	mu       sync.Mutex
	complete []bool // per piece of the file; valid while gen is b.gen
	gen      uint64

	writes pieceWrites // the engine's writes, for hashing on arrival
}

// pieceWrites follows the writes to a data file's pieces, so that a piece
// the engine wrote whole can be hashed from the bytes it wrote instead of
// read back (piece.SelfHash): such a sum stands only while no other write
// touched the piece since (two torrents holding the content may fetch a
// piece at once).
type pieceWrites struct {
	mu       sync.Mutex
	gen      []uint64 // per piece: bumped when a write to it starts
	inflight []int32  // per piece: writes under way
	sums     map[int]arrivedSum
}

// arrivedSum is the hash of a piece as written by the write of generation
// gen.
type arrivedSum struct {
	sum [20]byte
	gen uint64
}

// start records a write to the pieces [from, to) and returns the first
// one's new generation, and whether no other write to it was under way.
func (w *pieceWrites) start(from, to, pieces int) (gen uint64, alone bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen == nil {
		w.gen, w.inflight = make([]uint64, pieces), make([]int32, pieces)
	}
	alone = w.inflight[from] == 0
	for i := from; i < to; i++ {
		w.gen[i]++
		w.inflight[i]++
	}
	return w.gen[from], alone
}

// end records the end of a write started with start; when sum is not nil,
// the write covered piece from whole, and no other write to it started
// meanwhile or was under way (alone), sum stands for that piece.
func (w *pieceWrites) end(from, to int, gen uint64, alone bool, sum *[20]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := from; i < to; i++ {
		w.inflight[i]--
	}
	if sum != nil && alone && w.gen[from] == gen {
		if w.sums == nil {
			w.sums = map[int]arrivedSum{}
		}
		w.sums[from] = arrivedSum{*sum, gen}
		return
	}
	delete(w.sums, from)
}

// take returns, once, the sum of piece i as last written, if it stands.
func (w *pieceWrites) take(i int) ([20]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.sums[i]
	if !ok {
		return [20]byte{}, false
	}
	delete(w.sums, i)
	return a.sum, a.gen == w.gen[i] && w.inflight[i] == 0
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

// Layout maps a batch torrent's pieces onto the store's data and takes a
// reference on each file content; Close releases them. The contents the
// store does not hold yet go into one new pack: a file with the contents
// one after the other (each at a multiple of 4 KiB), created when the
// first byte is written, with an index beside it. One file per batch
// instead of one per package: creating the files was the largest part of
// an agent's CPU in a burst.
func (s *Store) Layout(info *metainfo.Info) (*Torrent, error) {
	spans, err := torrentfile.Layout(info)
	if err != nil {
		return nil, err
	}
	t := &Torrent{s: s, byPath: map[string]pathSpan{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	var pack *backing
	var end int64
	for _, sp := range spans {
		// The last file of a batch is unpadded; its key says so, so it only
		// matches other unpadded copies.
		key := ContentKey(sp.Length, sp.Hashes, sp.Unpadded)
		df := s.files[key]
		if df == nil {
			df = &dataFile{s: s, changes: &s.changes, key: key, size: sp.Length, pieces: len(sp.Hashes) / 20}
			if s.legacyHolds(key) {
				df.b = &backing{path: s.singlePath(key)}
			} else {
				if pack == nil {
					pack = s.newPack()
				}
				df.b, df.base = pack, end
				end += (sp.Length + packAlign - 1) / packAlign * packAlign
				pack.keys = append(pack.keys, key)
				pack.index = fmt.Appendf(pack.index, "%s %d %d\n", key, df.base, df.size)
			}
			s.files[key] = df
		}
		df.b.mu.Lock()
		df.b.refs++
		df.b.mu.Unlock()
		t.spans = append(t.spans, fileSpan{df: df, firstPiece: sp.FirstPiece})
		t.byPath[sp.Path] = pathSpan{df, sp.Hashes, sp.Unpadded}
	}
	return t, nil
}

// legacyHolds reports whether the directory has a data file of the
// content key alone, with some bytes in it. Under s.mu.
func (s *Store) legacyHolds(key string) bool {
	if !s.legacy {
		return false
	}
	fi, err := os.Lstat(s.singlePath(key))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// newPack returns a new pack, not yet on disk. Under s.mu.
func (s *Store) newPack() *backing {
	for {
		var rnd [8]byte
		rand.Read(rnd[:])
		name := hex.EncodeToString(rnd[:])
		if s.packs[name] == nil {
			b := &backing{path: filepath.Join(s.dir, packDir, name), pack: name, fresh: true}
			s.packs[name] = b
			return b
		}
	}
}

// loadPack takes in the pack name found on disk: its contents are held
// (their completion unknown: the engine hashes them before use). A pack
// without its data file, or with an index that does not parse, is left to
// Prune.
func (s *Store) loadPack(name string) {
	path := filepath.Join(s.dir, packDir, name)
	index, err := os.ReadFile(path + ".idx")
	if err != nil {
		return
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		return
	}
	// Only what was written counts as held: a content past the pack's end
	// never was.
	var written int64
	if fi, err := os.Stat(path); err == nil {
		written = fi.Size()
	}
	b := &backing{path: path, pack: name, index: index}
	var dfs []*dataFile
	for _, line := range strings.Split(strings.TrimSuffix(string(index), "\n"), "\n") {
		var key string
		var base, size int64
		if n, err := fmt.Sscanf(line, "%s %d %d", &key, &base, &size); n != 3 || err != nil ||
			len(key) != 40 || strings.Trim(key, "0123456789abcdef") != "" || base < 0 || size < 0 || base%packAlign != 0 {
			return
		}
		dfs = append(dfs, &dataFile{s: s, changes: &s.changes, key: key, b: b, base: base, size: size, pieces: torrentfile.NumPieces(size)})
	}
	s.packs[name] = b
	for _, df := range dfs {
		b.keys = append(b.keys, df.key)
		if s.files[df.key] == nil && (df.base < written || df.size == 0) {
			s.files[df.key] = df
		}
	}
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
	b := df.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refs--
	if b.refs > 0 || b.f == nil {
		return nil
	}
	err := b.f.Close()
	b.f = nil
	return err
}

// Data is where a file's content lies in the store: in the file at Path,
// from Offset on, for the file's length.
type Data struct {
	Path   string
	Offset int64
}

// Data returns where the torrent file at the slash-separated path p lies.
func (t *Torrent) Data(p string) (Data, bool) {
	ps, ok := t.byPath[p]
	if !ok {
		return Data{}, false
	}
	return Data{ps.df.b.path, ps.df.base}, true
}

// Complete reports whether every piece of the torrent file at the
// slash-separated path p is known complete in this run and its data was
// not changed since.
func (t *Torrent) Complete(p string) bool {
	ps, ok := t.byPath[p]
	return ok && ps.df.isComplete()
}

// Held returns the torrent's files whose data is complete (see Complete),
// by path, with where their data lies.
func (t *Torrent) Held() map[string]Data {
	held := map[string]Data{}
	for p, ps := range t.byPath {
		if ps.df.isComplete() {
			held[p] = Data{ps.df.b.path, ps.df.base}
		}
	}
	return held
}

// importChunk is how many bytes Import reads and writes at a time.
const importChunk = 16 * torrentfile.PieceLength

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
	if df.isComplete() {
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
	return &piece{df: sp.df, idx: idx, length: p.Length()}
}

type piece struct {
	df     *dataFile
	idx    int
	length int64 // the torrent's piece: the file's bytes, then padding
}

// span returns the offset in the content and the length of the piece's
// file data.
func (p *piece) span() (int64, int64) {
	off := int64(p.idx) * torrentfile.PieceLength
	return off, min(torrentfile.PieceLength, p.df.size-off)
}

func (p *piece) ReadAt(b []byte, off int64) (int, error) {
	start, n := p.span()
	f, err := p.df.b.open()
	if err != nil {
		return 0, err
	}
	var done int
	if off < n {
		m := min(int64(len(b)), n-off)
		r, err := f.ReadAt(b[:m], p.df.base+start+off)
		if err != nil && !(errors.Is(err, io.EOF) && r == int(m)) {
			return r, fmt.Errorf("reading %s: %w", p.df.b.path, err)
		}
		done = r
	}
	// The rest of the piece is padding.
	clear(b[done:])
	return len(b), nil
}

// pieceBufs hold a piece's file bytes for WriteTo.
var pieceBufs = sync.Pool{New: func() any {
	b := make([]byte, torrentfile.PieceLength)
	return &b
}}

// WriteTo writes the whole piece to w (how the engine hashes it): the file's
// bytes read at once, then the padding, with no buffer allocated per piece.
func (p *piece) WriteTo(w io.Writer) (int64, error) {
	start, n := p.span()
	if p.length < n || p.length > torrentfile.PieceLength {
		return 0, fmt.Errorf("piece %d of %s: length %d for %d bytes of data", p.idx, p.df.b.path, p.length, n)
	}
	f, err := p.df.b.open()
	if err != nil {
		return 0, err
	}
	buf := pieceBufs.Get().(*[]byte)
	defer pieceBufs.Put(buf)
	b := (*buf)[:n]
	if r, err := f.ReadAt(b, p.df.base+start); err != nil && !(errors.Is(err, io.EOF) && r == len(b)) {
		return 0, fmt.Errorf("reading %s: %w", p.df.b.path, err)
	}
	written, err := w.Write(b)
	if err != nil {
		return int64(written), err
	}
	pad, err := w.Write(torrentfile.Padding(int(p.length - n)))
	return int64(written + pad), err
}

// WriteAt writes the file's bytes of b, the piece's from off on. A write
// of the whole piece (the engine's chunks are pieces) is hashed as it
// goes to the disk, for SelfHash.
func (p *piece) WriteAt(b []byte, off int64) (int, error) {
	start, n := p.span()
	if off >= n {
		return len(b), nil // padding: never stored
	}
	m := min(int64(len(b)), n-off)
	var sum *[20]byte
	if off == 0 && m == n && (p.length == n || p.length == torrentfile.PieceLength) {
		s := torrentfile.PieceHash(b[:m], p.length == n)
		sum = &s
	}
	if err := p.df.write(b[:m], start+off, sum); err != nil {
		return 0, err
	}
	return len(b), nil
}

// SelfHash returns the piece's SHA-1 (storage.SelfHashing: how the engine
// hashes it): from the bytes the engine wrote when it wrote the piece
// whole and nothing has written it since, else read back.
func (p *piece) SelfHash() (metainfo.Hash, error) {
	if sum, ok := p.df.writes.take(p.idx); ok {
		return sum, nil
	}
	h := sha1.New()
	if _, err := p.WriteTo(h); err != nil {
		return metainfo.Hash{}, err
	}
	return metainfo.Hash(h.Sum(nil)), nil
}

func (p *piece) MarkComplete() error    { return p.df.mark(p.idx, true) }
func (p *piece) MarkNotComplete() error { return p.df.mark(p.idx, false) }

func (p *piece) Completion() storage.Completion {
	return p.df.completion(p.idx)
}

// open returns the backing file, creating it if needed.
func (b *backing) open() (*os.File, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openLocked()
}

func (b *backing) openLocked() (*os.File, error) {
	if b.f != nil {
		return b.f, nil
	}
	if b.pack != "" {
		if err := b.writeIndex(); err != nil {
			return nil, err
		}
	}
	// The directory usually exists: try the file first, make the
	// directory only when it is missing.
	f, err := os.OpenFile(b.path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(b.path), 0o755); err != nil {
			return nil, fmt.Errorf("creating data directory: %w", err)
		}
		f, err = os.OpenFile(b.path, os.O_RDWR|os.O_CREATE, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("opening data file: %w", err)
	}
	b.f = f
	return f, nil
}

// writeIndex writes the pack's index beside it (complete, or not at all),
// unless it is there: before the pack's first byte, so that a pack on disk
// always has its index.
func (b *backing) writeIndex() error {
	idx := b.path + ".idx"
	if _, err := os.Lstat(idx); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(idx), 0o755); err != nil {
		return fmt.Errorf("creating pack directory: %w", err)
	}
	tmp := idx + ".tmp"
	if err := os.WriteFile(tmp, b.index, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing pack index: %w", err)
	}
	if err := os.Rename(tmp, idx); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing pack index: %w", err)
	}
	return nil
}

// writeAt writes p at off of the content and records the write as our
// own, so that only writes by others make the completion state stale. The
// write itself runs outside the backing's lock (a write can wait for the
// disk, and the contents of a pack are written by many peers at once); the
// stamp is taken under the lock once no write of ours is in flight, and
// until then a changed stamp is not taken for someone else's write. A data
// file removed behind our back is written anew (second attempt).
func (df *dataFile) writeAt(p []byte, off int64) error {
	return df.write(p, off, nil)
}

// write is writeAt; when sum is not nil, p is the whole of the piece at
// off, whose hash it is, and the sum stands for that piece while no other
// write touches it (see pieceWrites).
func (df *dataFile) write(p []byte, off int64, sum *[20]byte) error {
	if len(p) == 0 {
		return nil
	}
	from := int(off / torrentfile.PieceLength)
	to := int((off + int64(len(p)) + torrentfile.PieceLength - 1) / torrentfile.PieceLength)
	gen, alone := df.writes.start(from, to, df.pieces)
	err := df.writeData(p, off)
	if err != nil {
		sum = nil
	}
	df.writes.end(from, to, gen, alone, sum)
	return err
}

func (df *dataFile) writeData(p []byte, off int64) error {
	df.changes.Add(1)
	b := df.b
	for range 2 {
		b.mu.Lock()
		f, err := b.openLocked()
		if err != nil {
			b.mu.Unlock()
			return err
		}
		b.inflight++
		b.mu.Unlock()
		_, err = f.WriteAt(p, df.base+off)
		b.mu.Lock()
		b.inflight--
		if err != nil {
			b.mu.Unlock()
			return fmt.Errorf("writing %s: %w", b.path, err)
		}
		// The descriptor's stat (no path lookup); a file removed behind
		// our back has no link left.
		if fi, err := f.Stat(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Nlink > 0 {
				if b.inflight == 0 {
					b.stamp = stamp{fi.Size(), fi.ModTime().UnixNano()}
				}
				b.mu.Unlock()
				return nil
			}
		}
		b.gen++
		if b.f == f {
			b.f.Close() // writes in flight on it finish first
			b.f = nil
		}
		b.mu.Unlock()
	}
	return fmt.Errorf("writing %s: the file keeps disappearing", b.path)
}

func statOf(path string) (stamp, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, false
	}
	return stamp{fi.Size(), fi.ModTime().UnixNano()}, true
}

// restamp takes the file's stamp as it is now, unless a write of ours is
// under way (its writer takes it when done). Under b.mu.
func (b *backing) restamp() {
	if b.inflight == 0 {
		b.stamp, _ = statOf(b.path)
	}
}

// marks returns df.complete, made anew when the backing changed behind our
// back since it was filled. Under df.mu and df.b.mu.
func (df *dataFile) marks() []bool {
	if df.complete == nil || df.gen != df.b.gen {
		df.complete, df.gen = make([]bool, df.pieces), df.b.gen
	}
	return df.complete
}

func (df *dataFile) mark(idx int, ok bool) error {
	df.mu.Lock()
	defer df.mu.Unlock()
	df.b.mu.Lock()
	df.marks()[idx] = ok
	df.b.restamp()
	df.b.mu.Unlock()
	if f := df.s.onComplete.Load(); ok && f != nil {
		(*f)(df.key, idx)
	}
	return nil
}

// markRange marks the pieces [from, to) complete, with one stat.
func (df *dataFile) markRange(from, to int) {
	df.mu.Lock()
	defer df.mu.Unlock()
	df.b.mu.Lock()
	m := df.marks()
	for i := from; i < to; i++ {
		m[i] = true
	}
	df.b.restamp()
	df.b.mu.Unlock()
	if f := df.s.onComplete.Load(); f != nil {
		for i := from; i < to; i++ {
			(*f)(df.key, i)
		}
	}
}

func (df *dataFile) completion(idx int) storage.Completion {
	df.mu.Lock()
	defer df.mu.Unlock()
	b := df.b
	b.mu.Lock()
	defer b.mu.Unlock()
	st, exists := statOf(b.path)
	if !exists {
		// Not written yet, or removed behind our back: nothing of it is
		// complete; write a new file from now on.
		b.gen++
		if b.f != nil {
			b.f.Close() // writes in flight on it finish first
			b.f = nil
		}
		return storage.Completion{Ok: true, Complete: false}
	}
	valid := df.complete != nil && df.gen == b.gen
	if valid && (st == b.stamp || b.inflight > 0) {
		return storage.Completion{Ok: true, Complete: df.complete[idx]}
	}
	if valid {
		// Changed behind our back (written by someone else): forget what
		// we knew of every content of the file and let the engine hash
		// them again.
		b.gen++
		df.complete = nil
	}
	// Data from an earlier run, or changed behind our back, is hashed
	// before use (unknown); a pack of this run holds only what we marked.
	if b.fresh || st.size < df.base+int64(idx)*torrentfile.PieceLength+1 {
		return storage.Completion{Ok: true, Complete: false}
	}
	return storage.Completion{Ok: false}
}

// isComplete reports whether every piece of the content is known complete
// in this run and its backing was not changed since.
func (df *dataFile) isComplete() bool {
	if df.pieces == 0 {
		return true // empty: nothing to hold
	}
	// The pieces first, in memory: a file still downloading costs no stat
	// (the agent asks of every file of a fetch several times a second).
	b := df.b
	df.mu.Lock()
	b.mu.Lock()
	gen := b.gen
	marked := df.complete != nil && df.gen == gen && !slices.Contains(df.complete, false)
	b.mu.Unlock()
	df.mu.Unlock()
	if !marked {
		return false
	}
	// Then one stat for the whole file, not one per piece, under the lock
	// our writes take with their stamp: a change found is someone else's,
	// and every content of the file forgets its marks.
	b.mu.Lock()
	defer b.mu.Unlock()
	st, exists := statOf(b.path)
	if b.gen != gen {
		return false
	}
	if !exists || st != b.stamp && b.inflight == 0 {
		b.gen++
		return false
	}
	return true
}

// Prune deletes data that no open torrent uses, least recently written
// first, until the store's disk use is at most max bytes, and returns the
// disk use left (blocks allocated, so sparse partial files count what they
// hold). A pack goes as a whole, with its index. Data from earlier runs
// counts as unused.
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
	// A unit is what goes at once: a data file of one content, or a pack
	// with its index.
	type unit struct {
		paths []string
		pack  string
		used  int64
		mtime int64
	}
	units := map[string]*unit{}
	var used int64
	packs := filepath.Join(s.dir, packDir)
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
		id, pack := p, ""
		if filepath.Dir(p) == packs {
			pack = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".tmp"), ".idx")
			id = filepath.Join(packs, pack)
		}
		u := units[id]
		if u == nil {
			u = &unit{pack: pack}
			units[id] = u
		}
		u.paths = append(u.paths, p)
		u.used += n
		if m := fi.ModTime().UnixNano(); m > u.mtime {
			u.mtime = m
		}
		return nil
	})
	if err != nil {
		return used, fmt.Errorf("measuring the store: %w", err)
	}
	if used <= max {
		return used, nil
	}
	all := slices.Collect(maps.Values(units))
	slices.SortFunc(all, func(a, b *unit) int { return cmp.Compare(a.mtime, b.mtime) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range all {
		if used <= max {
			break
		}
		if !s.dropLocked(u.pack, u.paths[0]) {
			continue
		}
		for _, p := range u.paths {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return used, fmt.Errorf("pruning the store: %w", err)
			}
		}
		used -= u.used
	}
	return used, nil
}

// dropLocked forgets the pack named pack, or else the data file of one
// content at path, unless an open torrent uses it; it reports whether the
// files may go. Under s.mu.
func (s *Store) dropLocked(pack, path string) bool {
	var b *backing
	var keys []string
	if pack != "" {
		b = s.packs[pack]
		if b != nil {
			keys = b.keys
		}
	} else if df := s.files[filepath.Base(path)]; df != nil && df.b.path == path {
		b, keys = df.b, []string{df.key}
	}
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refs > 0 {
		return false
	}
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
	b.gen++
	for _, k := range keys {
		if df := s.files[k]; df != nil && df.b == b {
			delete(s.files, k)
		}
	}
	if pack != "" {
		delete(s.packs, pack)
	}
	return true
}

type errPiece struct{ err error }

func (e errPiece) ReadAt([]byte, int64) (int, error)  { return 0, e.err }
func (e errPiece) WriteAt([]byte, int64) (int, error) { return 0, e.err }
func (e errPiece) MarkComplete() error                { return e.err }
func (e errPiece) MarkNotComplete() error             { return e.err }
func (e errPiece) Completion() storage.Completion     { return storage.Completion{Err: e.err} }
