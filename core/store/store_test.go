package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

const pl = torrentfile.PieceLength

type tfile struct {
	path string
	data []byte
}

func file(path string, size int64, seed uint64) tfile {
	return tfile{path, testkit.RandBytes(size, seed)}
}

// batch is a torrent built from files, with its stream: file data where the
// files are and garbage where the pads are (a peer may send anything there).
type batch struct {
	files  []tfile
	info   *metainfo.Info
	stream []byte // with garbage pads
	clean  []byte // with zero pads
}

func newBatch(t *testing.T, files ...tfile) *batch {
	t.Helper()
	var pf []torrentfile.File
	b := &batch{files: files}
	for i, f := range files {
		h, err := torrentfile.HashReader(bytes.NewReader(f.data), int64(len(f.data)))
		if err != nil {
			t.Fatal(err)
		}
		pf = append(pf, torrentfile.File{Path: f.path, Hashes: h})
		b.stream = append(b.stream, f.data...)
		b.clean = append(b.clean, f.data...)
		if i < len(files)-1 {
			pad := torrentfile.PadLength(int64(len(f.data)))
			b.stream = append(b.stream, bytes.Repeat([]byte{0xA5}, int(pad))...)
			b.clean = append(b.clean, make([]byte, pad)...)
		}
	}
	info, err := torrentfile.Info("test", pf)
	if err != nil {
		t.Fatal(err)
	}
	b.info = info
	return b
}

func open(t *testing.T, s *Store, b *batch) storage.TorrentImpl {
	t.Helper()
	ti, err := s.OpenTorrent(context.Background(), b.info, metainfo.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ti.Close() })
	return ti
}

func (b *batch) piece(ti storage.TorrentImpl, i int) (storage.PieceImpl, metainfo.Piece) {
	p := b.info.Piece(i)
	return ti.Piece(p), p
}

// writeAll writes every piece (in two halves, to exercise offsets) and
// marks it complete.
func (b *batch) writeAll(t *testing.T, ti storage.TorrentImpl) {
	t.Helper()
	for i := 0; i < b.info.NumPieces(); i++ {
		pi, p := b.piece(ti, i)
		data := b.stream[p.Offset() : p.Offset()+p.Length()]
		half := len(data) / 2
		for _, part := range []struct {
			off int
			b   []byte
		}{{half, data[half:]}, {0, data[:half]}} {
			n, err := pi.WriteAt(part.b, int64(part.off))
			if err != nil || n != len(part.b) {
				t.Fatalf("piece %d WriteAt(off %d, %d bytes) = %d, %v", i, part.off, len(part.b), n, err)
			}
		}
		if err := pi.MarkComplete(); err != nil {
			t.Fatalf("piece %d MarkComplete: %v", i, err)
		}
	}
}

// newStore returns New(dir), failing the test on an error.
func newStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// data returns where the batch file at path lies in s, through a Layout
// of b closed again.
func (b *batch) data(t *testing.T, s *Store, path string) Data {
	t.Helper()
	l, err := s.Layout(b.info)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, ok := l.Data(path)
	if !ok {
		t.Fatalf("Data(%q) not found", path)
	}
	return d
}

// complete reports Torrent.Complete of the batch file at path, through a
// Layout of b closed again.
func (b *batch) complete(t *testing.T, s *Store, path string) bool {
	t.Helper()
	l, err := s.Layout(b.info)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Complete(path)
}

// readData returns the content at d: size bytes, or fewer where the file
// on disk ends before (none without the file).
func readData(t *testing.T, d Data, size int) []byte {
	t.Helper()
	f, err := os.Open(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(io.NewSectionReader(f, d.Offset, int64(size)))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// fileSize is the size of the file at path, -1 if there is none.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func completions(b *batch, ti storage.TorrentImpl) []storage.Completion {
	var cs []storage.Completion
	for i := 0; i < b.info.NumPieces(); i++ {
		pi, _ := b.piece(ti, i)
		cs = append(cs, pi.Completion())
	}
	return cs
}

func TestWriteReadComplete(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	b := newBatch(t,
		file("a/one.rpm", pl+123, 1),
		file("b/two.rpm", 2*pl-1, 2),
		file("c/three.rpm", 777, 3),
	)
	ti := open(t, s, b)

	// Before any write: no data, known incomplete.
	for i, c := range completions(b, ti) {
		if c.Err != nil || !c.Ok || c.Complete {
			t.Errorf("piece %d before writing: %+v, want Ok, not Complete", i, c)
		}
	}
	b.writeAll(t, ti)

	for i := 0; i < b.info.NumPieces(); i++ {
		pi, p := b.piece(ti, i)
		buf := bytes.Repeat([]byte{0xFF}, int(p.Length()))
		n, err := pi.ReadAt(buf, 0)
		if err != nil || n != len(buf) {
			t.Fatalf("piece %d ReadAt = %d, %v", i, n, err)
		}
		if want := b.clean[p.Offset() : p.Offset()+p.Length()]; !bytes.Equal(buf, want) {
			t.Errorf("piece %d reads back wrong (pad garbage stored?)", i)
		}
		// How the engine hashes it: the same bytes, padding included.
		var whole bytes.Buffer
		if n, err := pi.(io.WriterTo).WriteTo(&whole); err != nil || n != p.Length() {
			t.Errorf("piece %d WriteTo = %d, %v; want %d", i, n, err, p.Length())
		} else if !bytes.Equal(whole.Bytes(), buf) {
			t.Errorf("piece %d WriteTo differs from ReadAt", i)
		}
		// A read inside the pad region only.
		if p.Length() == pl {
			tailBuf := bytes.Repeat([]byte{0xFF}, 10)
			if _, err := pi.ReadAt(tailBuf, pl-10); err != nil {
				t.Errorf("piece %d ReadAt tail: %v", i, err)
			} else if want := b.clean[p.Offset()+pl-10 : p.Offset()+pl]; !bytes.Equal(tailBuf, want) {
				t.Errorf("piece %d tail = %x, want %x", i, tailBuf, want)
			}
		}
		if c := pi.Completion(); c.Err != nil || !c.Ok || !c.Complete {
			t.Errorf("piece %d after MarkComplete: %+v", i, c)
		}
	}

	// The data hold exactly the files' bytes, each at an aligned offset of
	// the one pack, and nothing but the pack and its index is on disk.
	l := layout(t, s, b)
	want := map[string]bool{}
	for _, f := range b.files {
		d, ok := l.Data(f.path)
		if !ok {
			t.Fatalf("Data(%q) not found", f.path)
		}
		if !strings.HasPrefix(d.Path, dir+string(filepath.Separator)) {
			t.Errorf("data path %q outside the store %q", d.Path, dir)
		}
		if d.Offset%packAlign != 0 {
			t.Errorf("%s: data at offset %d, not a multiple of %d", f.path, d.Offset, packAlign)
		}
		if got := readData(t, d, len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s: data has %d bytes (or other bytes), want the file's %d", f.path, len(got), len(f.data))
		}
		if !l.Complete(f.path) {
			t.Errorf("Torrent.Complete(%s) = false after every piece was marked", f.path)
		}
		want[d.Path], want[d.Path+".idx"] = true, true
	}
	if len(want) != 2 {
		t.Errorf("the batch's data is in %d files, want one pack and its index: %v", len(want), want)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), "pad") {
			t.Errorf("pad-like file on disk: %s", p)
		}
		if !d.IsDir() && !want[p] {
			t.Errorf("unexpected file on disk: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Marking a piece not complete is reflected, and Complete(path) follows.
	pi, _ := b.piece(ti, 0)
	if err := pi.MarkNotComplete(); err != nil {
		t.Fatal(err)
	}
	if c := pi.Completion(); !c.Ok || c.Complete {
		t.Errorf("after MarkNotComplete: %+v", c)
	}
	if l.Complete(b.files[0].path) {
		t.Error("Torrent.Complete true with a piece marked not complete")
	}
	if !l.Complete(b.files[1].path) {
		t.Error("Torrent.Complete of another file of the pack false after a piece of the first was marked not complete")
	}
	if l.Complete("nonexistent") {
		t.Error("Torrent.Complete of a path not in the torrent")
	}
}

func TestPartialFileNotComplete(t *testing.T) {
	s := newStore(t, t.TempDir())
	b := newBatch(t, file("x", 3*pl+1, 4), file("y", 10, 5))
	ti := open(t, s, b)
	pi, p := b.piece(ti, 1)
	if _, err := pi.WriteAt(b.stream[p.Offset():p.Offset()+p.Length()], 0); err != nil {
		t.Fatal(err)
	}
	if err := pi.MarkComplete(); err != nil {
		t.Fatal(err)
	}
	cs := completions(b, ti)
	for i, c := range cs {
		wantComplete := i == 1
		if !c.Ok || c.Complete != wantComplete {
			t.Errorf("piece %d: %+v, want Ok, Complete=%v", i, c, wantComplete)
		}
	}
	if b.complete(t, s, "x") {
		t.Error("Torrent.Complete true with one of four pieces")
	}
}

func TestNewRunDoesNotTrustDisk(t *testing.T) {
	dir := t.TempDir()
	s1 := newStore(t, dir)
	b := newBatch(t, file("a", pl+5, 6), file("b", 2*pl, 7))
	ti1, err := s1.OpenTorrent(context.Background(), b.info, metainfo.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	b.writeAll(t, ti1)
	if err := ti1.Close(); err != nil {
		t.Fatal(err)
	}

	// A new agent run on the same directory.
	s2 := newStore(t, dir)
	ti2 := open(t, s2, b)
	for i, c := range completions(b, ti2) {
		if c.Err != nil || c.Ok {
			t.Errorf("piece %d in a new run: %+v, want Ok=false (hash again)", i, c)
		}
	}
	if b.complete(t, s2, "a") {
		t.Error("Torrent.Complete trusts data from an earlier run")
	}
	// Once hashed and marked, it is complete again, without rewriting.
	for i := 0; i < b.info.NumPieces(); i++ {
		pi, p := b.piece(ti2, i)
		buf := make([]byte, p.Length())
		if _, err := pi.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, b.clean[p.Offset():p.Offset()+p.Length()]) {
			t.Fatalf("piece %d from an earlier run reads back wrong (%v)", i, err)
		}
		if err := pi.MarkComplete(); err != nil {
			t.Fatal(err)
		}
		if c := pi.Completion(); !c.Ok || !c.Complete {
			t.Errorf("piece %d after rehash: %+v", i, c)
		}
	}
	for _, f := range b.files {
		if !b.complete(t, s2, f.path) {
			t.Errorf("%s: not Complete after every piece was hashed and marked", f.path)
		}
	}

	// A torrent whose data was never written: known incomplete, no hashing.
	other := newBatch(t, file("c", 100, 8), file("d", pl+1, 9))
	tio := open(t, s2, other)
	for i, c := range completions(other, tio) {
		if c.Err != nil || !c.Ok || c.Complete {
			t.Errorf("missing data, piece %d: %+v, want Ok, not Complete", i, c)
		}
	}
}

func TestSharedFiles(t *testing.T) {
	s := newStore(t, t.TempDir())
	shared := file("pkgs/shared.rpm", 2*pl+99, 10)
	a := newBatch(t, file("pkgs/a.rpm", 5000, 11), shared, file("pkgs/z.rpm", 10, 12))
	// The same content under another path and position.
	moved := tfile{"other/shared.rpm", shared.data}
	b := newBatch(t, moved, file("pkgs/b.rpm", pl, 13))

	da, db := a.data(t, s, shared.path), b.data(t, s, moved.path)
	if da != db {
		t.Errorf("shared file has two data: %+v and %+v", da, db)
	}
	if a.data(t, s, "pkgs/a.rpm") == da || b.data(t, s, "pkgs/b.rpm") == db {
		t.Error("different contents share data")
	}

	// Downloading a completes the shared file in b too.
	tia := open(t, s, a)
	tib := open(t, s, b)
	a.writeAll(t, tia)
	for i, c := range completions(b, tib) {
		wantComplete := i < torrentfile.NumPieces(int64(len(shared.data)))
		if !c.Ok || c.Complete != wantComplete {
			t.Errorf("b piece %d: %+v, want Ok, Complete=%v", i, c, wantComplete)
		}
	}
	if !b.complete(t, s, moved.path) {
		t.Error("the shared file is not Complete in b")
	}
	pi, p := b.piece(tib, 2)
	buf := make([]byte, p.Length())
	if _, err := pi.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, b.clean[p.Offset():p.Offset()+p.Length()]) {
		t.Errorf("shared piece reads wrong through b (%v)", err)
	}

	// A second store instance on the directory finds the written data
	// where the first put it.
	s2 := newStore(t, s.Dir())
	if d2 := b.data(t, s2, moved.path); d2 != da {
		t.Errorf("data differs between store instances: %+v, %+v", da, d2)
	}

	// Closing one torrent leaves the other working.
	if err := tia.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pi.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, b.clean[p.Offset():p.Offset()+p.Length()]) {
		t.Errorf("shared piece after closing a: %v", err)
	}
}

// A change made behind the store's back to a pack makes every content of
// the pack unknown again (they share one file), whichever the engine asks
// of first, also after the store writes the pack again; the data of
// another batch, in another pack, stays complete.
func TestChangedBehindOurBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(t *testing.T, path string)
	}{
		{"rewritten same size", func(t *testing.T, path string) {
			if err := os.WriteFile(path, testkit.RandBytes(fileSize(path), 99), 0o644); err != nil {
				t.Fatal(err)
			}
			future := time.Now().Add(time.Hour)
			if err := os.Chtimes(path, future, future); err != nil {
				t.Fatal(err)
			}
		}},
		{"mtime only", func(t *testing.T, path string) {
			past := time.Now().Add(-time.Hour)
			if err := os.Chtimes(path, past, past); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, fileSize(path)/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		// The engine asks of one content of the pack (first), finds it
		// changed and downloads it again; the other, not asked of before
		// that write, must not be complete either.
		for _, first := range []string{"f", "g"} {
			t.Run(tc.name+"/"+first+" first", func(t *testing.T) {
				s := newStore(t, t.TempDir())
				b := newBatch(t, file("f", 3*pl+50, 20), file("g", 60, 21))
				// Another batch with no content in common: another pack.
				u := newBatch(t, file("u", 2*pl+7, 22), file("v", 70, 23))
				ti := open(t, s, b)
				tu := open(t, s, u)
				b.writeAll(t, ti)
				u.writeAll(t, tu)
				d, dg, du := b.data(t, s, "f"), b.data(t, s, "g"), u.data(t, s, "u")
				if dg.Path != d.Path {
					t.Fatalf("the files of one batch are in two packs: %s, %s", d.Path, dg.Path)
				}
				if du.Path == d.Path {
					t.Fatalf("two batches with no content in common share the pack %s", d.Path)
				}
				for _, c := range []struct {
					b    *batch
					path string
				}{{b, "f"}, {b, "g"}, {u, "u"}, {u, "v"}} {
					if !c.b.complete(t, s, c.path) {
						t.Fatalf("%s not complete after writing", c.path)
					}
				}
				tc.modify(t, d.Path)
				other := map[string]string{"f": "g", "g": "f"}[first]
				for j, c := range b.fileCompletion(t, ti, first) {
					if c.Ok && c.Complete {
						t.Errorf("%s piece %d still Complete after its pack was changed: %+v", first, j, c)
					}
				}
				if b.complete(t, s, first) {
					t.Errorf("Torrent.Complete(%s) still true after its pack was changed", first)
				}
				b.writeFile(t, ti, first)
				if !b.complete(t, s, first) {
					t.Errorf("%s not Complete after downloading it again", first)
				}
				fi := map[string]int{"f": 0, "g": 1}[first]
				if got := readData(t, b.data(t, s, first), len(b.files[fi].data)); !bytes.Equal(got, b.files[fi].data) {
					t.Errorf("%s reads back wrong after downloading it again", first)
				}
				for j, c := range b.fileCompletion(t, ti, other) {
					if c.Ok && c.Complete {
						t.Errorf("%s piece %d, in the same pack, still Complete after the pack was changed: %+v", other, j, c)
					}
				}
				if b.complete(t, s, other) {
					t.Errorf("Torrent.Complete(%s), in the same pack, still true after the pack was changed", other)
				}
				// The other batch's pack is unaffected.
				for _, f := range u.files {
					if !u.complete(t, s, f.path) {
						t.Errorf("%s, in another pack, no longer Complete", f.path)
					}
				}
				for i, c := range completions(u, tu) {
					if !c.Ok || !c.Complete {
						t.Errorf("piece %d of the other pack: %+v, want complete", i, c)
					}
				}
			})
		}
	}
}

// After the pack is removed behind the store's back, downloading the
// pieces again must produce complete data on disk.
func TestRewriteAfterRemoval(t *testing.T) {
	s := newStore(t, t.TempDir())
	b := newBatch(t, file("f", pl+50, 30), file("g", 60, 31))
	ti := open(t, s, b)
	b.writeAll(t, ti)
	d := b.data(t, s, "f")
	if err := os.Remove(d.Path); err != nil {
		t.Fatal(err)
	}
	b.writeAll(t, ti) // the engine downloads it again
	for i, c := range completions(b, ti) {
		if !c.Ok || !c.Complete {
			t.Errorf("piece %d after downloading again: %+v", i, c)
		}
	}
	for _, f := range b.files {
		if got := readData(t, b.data(t, s, f.path), len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s after downloading again: %d bytes (or other bytes), want the file's %d", f.path, len(got), len(f.data))
		}
		if !b.complete(t, s, f.path) {
			t.Errorf("%s not Complete after downloading again", f.path)
		}
	}
}

func TestLayoutRejects(t *testing.T) {
	s := newStore(t, t.TempDir())
	b := newBatch(t, file("f", 100, 40), file("g", 100, 41))
	wrongPL := *b.info
	wrongPL.PieceLength = 2 * pl
	if _, err := s.Layout(&wrongPL); err == nil {
		t.Error("Layout accepted another piece length")
	}
	// Without the pad file the second file is misaligned.
	unpadded := *b.info
	unpadded.Files = []metainfo.FileInfo{b.info.Files[0], b.info.Files[2]}
	if _, err := s.Layout(&unpadded); err == nil || !strings.Contains(err.Error(), "g") {
		t.Errorf("Layout of a misaligned file: %v", err)
	}
	short := *b.info
	short.Pieces = short.Pieces[:20]
	if _, err := s.Layout(&short); err == nil {
		t.Error("Layout accepted too few piece hashes")
	}
	if _, err := s.OpenTorrent(context.Background(), &short, metainfo.Hash{}); err == nil {
		t.Error("OpenTorrent accepted too few piece hashes")
	}
}

func TestContentKey(t *testing.T) {
	h := bytes.Repeat([]byte{1}, 20)
	k := ContentKey(5, h, false)
	if len(k) != 40 || strings.ToLower(k) != k {
		t.Errorf("ContentKey = %q", k)
	}
	for _, other := range []string{ContentKey(6, h, false), ContentKey(5, bytes.Repeat([]byte{2}, 20), false), ContentKey(5, nil, false), ContentKey(5, h, true)} {
		if other == k {
			t.Errorf("ContentKey collides: %s", k)
		}
	}
	if ContentKey(5, h, false) != k {
		t.Error("ContentKey not deterministic")
	}
}

// A crafted torrent that names a file's unpadded hashes (as the last file
// of a batch has them) for a padded copy of it does not share that file's
// data: the engine would find its last piece wrong and rewrite it.
func TestCraftedTailNotShared(t *testing.T) {
	s := newStore(t, t.TempDir())
	x := file("pkgs/x.rpm", 2*pl+77, 20)
	a := newBatch(t, file("pkgs/a.rpm", 300, 21), x)
	crafted := newBatch(t, x, file("pkgs/z.rpm", 10, 22))
	info := *crafted.info
	info.Pieces = slices.Clone(info.Pieces)
	first := torrentfile.NumPieces(300)
	n := torrentfile.NumPieces(int64(len(x.data)))
	copy(info.Pieces[:n*20], a.info.Pieces[first*20:(first+n)*20])
	crafted.info = &info
	if da, dc := a.data(t, s, x.path), crafted.data(t, s, x.path); da == dc {
		t.Errorf("the padded copy shares the unpadded file's data %+v", da)
	}
}

// Prune deletes unused data a pack at a time (the pack with its index),
// least recently written first, keeps the packs of open torrents (also one
// written by a closed torrent, holding a content an open one shares), and
// reports the disk use left.
func TestPrune(t *testing.T) {
	s := newStore(t, t.TempDir())
	shared := file("shared", 3*pl, 1)
	old := newBatch(t, file("old", 4*pl, 2))
	held := newBatch(t, shared, file("held", pl, 3))
	newer := newBatch(t, file("newer", 5*pl, 4))
	live := newBatch(t, shared, file("live", 2*pl, 5))
	order := []*batch{old, held, newer, live}
	for _, b := range order {
		ti, err := s.OpenTorrent(context.Background(), b.info, metainfo.Hash{})
		if err != nil {
			t.Fatal(err)
		}
		b.writeAll(t, ti)
		if b != live {
			ti.Close()
		} else {
			t.Cleanup(func() { ti.Close() })
		}
	}
	// Each batch's new contents are one pack (live's: only "live"; its
	// "shared" is in held's). Distinct mtimes, oldest first in this order,
	// set once every write is done (live wrote into held's pack too).
	packs := map[*batch]string{}
	for i, b := range order {
		p := b.data(t, s, b.files[len(b.files)-1].path).Path
		for _, other := range packs {
			if other == p {
				t.Fatalf("two batches write the pack %s", p)
			}
		}
		packs[b] = p
		when := time.Now().Add(time.Duration(i-10) * time.Minute)
		for _, f := range []string{p, p + ".idx"} {
			if err := os.Chtimes(f, when, when); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := live.data(t, s, shared.path); d.Path != packs[held] {
		t.Fatalf("live's shared content is in %s, not in held's pack %s", d.Path, packs[held])
	}
	// kept reports whether the pack of b is on disk with its index; a pack
	// goes as a whole or not at all.
	kept := func(b *batch) bool {
		t.Helper()
		pack, idx := fileSize(packs[b]) >= 0, fileSize(packs[b]+".idx") >= 0
		if pack != idx {
			t.Errorf("pack %s on disk: %v, its index: %v", packs[b], pack, idx)
		}
		return pack
	}
	total, err := s.Prune(1 << 40)
	if err != nil || total < 14*pl {
		t.Fatalf("Prune(no cap) = %d, %v; want all %d bytes kept", total, err, 14*pl)
	}
	// About 16 pl on disk: the oldest pack (old's) going is enough.
	left, err := s.Prune(14 * pl)
	if err != nil {
		t.Fatal(err)
	}
	if kept(old) {
		t.Error("the least recently written unused pack was kept over the cap")
	}
	if !kept(held) || !kept(newer) || !kept(live) {
		t.Error("Prune deleted more than the least recently written pack it needed to")
	}
	if left > 14*pl {
		t.Errorf("%d bytes left, want at most %d", left, 14*pl)
	}
	// Room for the live data and a bit: held's pack is older than
	// newer's but in use (live shares "shared"), so newer's goes.
	if left, err = s.Prune(9 * pl); err != nil {
		t.Fatal(err)
	}
	if kept(newer) {
		t.Error("unused data was kept over the cap")
	}
	if !kept(held) || !kept(live) {
		t.Error("a pack of an open torrent was deleted")
	}
	if left > 9*pl {
		t.Errorf("%d bytes left, want at most %d", left, 9*pl)
	}
	// Over a cap smaller than the live data: nothing in use is deleted.
	if left, err = s.Prune(pl); err != nil || left < 6*pl {
		t.Errorf("Prune below the live data = %d, %v", left, err)
	}
	if !kept(held) || !kept(live) {
		t.Error("a pack of an open torrent was deleted")
	}
	for _, f := range []tfile{shared, live.files[1]} {
		if got := readData(t, live.data(t, s, f.path), len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s: data of the open torrent changed by Prune", f.path)
		}
	}
}

// An idle store is not measured again: with --max-disk the agent prunes
// every second, and walking every data file each time cost CPU while
// idle. A write makes the next Prune measure.
func TestPruneIdle(t *testing.T) {
	s := newStore(t, t.TempDir())
	b := newBatch(t, file("a", 2*pl, 30))
	ti := open(t, s, b)
	b.writeAll(t, ti)
	first, err := s.Prune(1 << 40)
	if err != nil || first < 2*pl {
		t.Fatalf("Prune = %d, %v", first, err)
	}
	for range 5 {
		if used, err := s.Prune(1 << 40); err != nil || used != first {
			t.Fatalf("Prune of an idle store = %d, %v; want %d", used, err, first)
		}
	}
	if s.walks != 1 {
		t.Errorf("an idle store was measured %d times, want once", s.walks)
	}
	c := newBatch(t, file("c", pl, 31))
	tc := open(t, s, c)
	c.writeAll(t, tc)
	if used, err := s.Prune(1 << 40); err != nil || used < first+pl {
		t.Errorf("Prune after a write = %d, %v; want at least %d", used, err, first+pl)
	}
	if s.walks != 2 {
		t.Errorf("measured %d times after a write, want 2", s.walks)
	}
}

// BenchmarkWriteNewFiles writes one piece into each of many new data files,
// as a single client fetching a batch of small packages does.
func BenchmarkWriteNewFiles(b *testing.B) {
	const files = 200
	var fs []tfile
	for i := range files {
		fs = append(fs, file(fmt.Sprintf("p/%d.rpm", i), pl, uint64(i)))
	}
	t := &testing.T{}
	bt := newBatch(t, fs...)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := newStore(b, b.TempDir())
		ti, err := s.OpenTorrent(context.Background(), bt.info, metainfo.Hash{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i := range files {
			pi, p := bt.piece(ti, i)
			if _, err := pi.WriteAt(bt.stream[p.Offset():p.Offset()+p.Length()], 0); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		ti.Close()
		b.StartTimer()
	}
}

// selfHash is how the engine hashes a piece of this store.
func selfHash(t *testing.T, pi storage.PieceImpl, i int) [20]byte {
	t.Helper()
	sh, ok := pi.(storage.SelfHashing)
	if !ok {
		t.Fatal("pieces do not hash themselves")
	}
	sum, err := sh.SelfHash()
	if err != nil {
		t.Fatalf("piece %d SelfHash: %v", i, err)
	}
	return sum
}

// A piece the engine writes whole is hashed from the bytes it wrote, not
// read back; any other write to it since (a part, another torrent's, an
// import) makes it read back.
func TestSelfHash(t *testing.T) {
	s := newStore(t, t.TempDir())
	b := newBatch(t,
		file("a/one.rpm", pl+123, 1),
		file("b/two.rpm", 2*pl-1, 2),
		file("c/three.rpm", 777, 3), // last: its piece is unpadded
	)
	ti := open(t, s, b)
	want := func(i int) [20]byte { return [20]byte(b.info.Pieces[20*i : 20*i+20]) }
	whole := func(i int, data []byte) {
		t.Helper()
		pi, _ := b.piece(ti, i)
		if n, err := pi.WriteAt(data, 0); err != nil || n != len(data) {
			t.Fatalf("piece %d WriteAt = %d, %v", i, n, err)
		}
	}
	for i := 0; i < b.info.NumPieces(); i++ {
		_, p := b.piece(ti, i)
		// Garbage in the pads, as a peer may send.
		whole(i, b.stream[p.Offset():p.Offset()+p.Length()])
	}
	// The data on disk changed behind the store's back: the sums are those
	// of the bytes the engine wrote.
	d := b.data(t, s, "a/one.rpm")
	f, err := os.OpenFile(d.Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("changed"), d.Offset); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for i := 0; i < b.info.NumPieces(); i++ {
		pi, _ := b.piece(ti, i)
		if got := selfHash(t, pi, i); got != want(i) {
			t.Errorf("piece %d: sum %x, want the torrent's %x", i, got, want(i))
		}
	}
	// Taken once: the next hash reads the piece back.
	pi0, _ := b.piece(ti, 0)
	if got := selfHash(t, pi0, 0); got == want(0) {
		t.Error("piece 0 hashed again from its arrival: the change on disk went unseen")
	}

	// A piece written whole, then in part: read back.
	_, p := b.piece(ti, 1)
	good := b.clean[p.Offset() : p.Offset()+p.Length()]
	bad := bytes.Clone(good)
	bad[0] ^= 1
	whole(1, bad)
	pi1, _ := b.piece(ti, 1)
	if _, err := pi1.WriteAt(good[:10], 0); err != nil {
		t.Fatal(err)
	}
	if got := selfHash(t, pi1, 1); got != want(1) {
		t.Errorf("piece 1 rewritten in part: sum %x, want the torrent's %x (read back)", got, want(1))
	}
	// A bad piece written whole fails.
	whole(1, bad)
	if got := selfHash(t, pi1, 1); got == want(1) {
		t.Error("piece 1 written with a wrong byte hashed as good")
	}
}

// Two writes of one piece that overlap in time (two torrents holding the
// content fetch it at once): neither one's sum stands, whichever ends last.
func TestPieceWritesOverlap(t *testing.T) {
	var w pieceWrites
	sum := [20]byte{1}
	g, alone := w.start(0, 1, 3)
	w.end(0, 1, g, alone, &sum)
	if got, ok := w.take(0); !ok || got != sum {
		t.Errorf("a write alone: take = %x, %v", got, ok)
	}
	for _, lastEnds := range []string{"first", "second"} {
		g1, a1 := w.start(0, 1, 3)
		g2, a2 := w.start(0, 1, 3)
		if lastEnds == "first" {
			w.end(0, 1, g2, a2, &sum)
			w.end(0, 1, g1, a1, &sum)
		} else {
			w.end(0, 1, g1, a1, &sum)
			w.end(0, 1, g2, a2, &sum)
		}
		if _, ok := w.take(0); ok {
			t.Errorf("overlapping writes, the %s started ends last: a sum stands", lastEnds)
		}
	}
	// A write of a range that covers the piece (an import) voids its sum.
	g, alone = w.start(1, 2, 3)
	w.end(1, 2, g, alone, &sum)
	g, alone = w.start(0, 3, 3)
	w.end(0, 3, g, alone, nil)
	if _, ok := w.take(1); ok {
		t.Error("a sum stands after an import rewrote the piece")
	}
}
