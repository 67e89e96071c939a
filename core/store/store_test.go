package store

import (
	"bytes"
	"context"
	"fmt"
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

func (b *batch) dataPath(t *testing.T, s *Store, path string) string {
	t.Helper()
	l, err := s.Layout(b.info)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p, ok := l.DataPath(path)
	if !ok {
		t.Fatalf("DataPath(%q) not found", path)
	}
	return p
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
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
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

	// The data files hold exactly the files' bytes, and nothing else is on disk.
	want := map[string]bool{}
	for _, f := range b.files {
		p := b.dataPath(t, s, f.path)
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Errorf("data path %q outside the store %q", p, dir)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.data) {
			t.Errorf("%s: data file has %d bytes, want the file's %d", f.path, len(got), len(f.data))
		}
		if !s.Complete(p) {
			t.Errorf("Store.Complete(%s) = false after every piece was marked", f.path)
		}
		want[p] = true
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
	if p := b.dataPath(t, s, b.files[0].path); s.Complete(p) {
		t.Error("Store.Complete true with a piece marked not complete")
	}
	if s.Complete(filepath.Join(dir, "nonexistent")) {
		t.Error("Store.Complete of an unknown path")
	}
}

func TestPartialFileNotComplete(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
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
	if s.Complete(b.dataPath(t, s, "x")) {
		t.Error("Store.Complete true with one of four pieces")
	}
}

func TestNewRunDoesNotTrustDisk(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
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
	s2, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ti2 := open(t, s2, b)
	for i, c := range completions(b, ti2) {
		if c.Err != nil || c.Ok {
			t.Errorf("piece %d in a new run: %+v, want Ok=false (hash again)", i, c)
		}
	}
	if s2.Complete(b.dataPath(t, s2, "a")) {
		t.Error("Store.Complete trusts data from an earlier run")
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
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shared := file("pkgs/shared.rpm", 2*pl+99, 10)
	a := newBatch(t, file("pkgs/a.rpm", 5000, 11), shared, file("pkgs/z.rpm", 10, 12))
	// The same content under another path and position.
	moved := tfile{"other/shared.rpm", shared.data}
	b := newBatch(t, moved, file("pkgs/b.rpm", pl, 13))

	pa, pb := a.dataPath(t, s, shared.path), b.dataPath(t, s, moved.path)
	if pa != pb {
		t.Errorf("shared file has two data paths: %s and %s", pa, pb)
	}
	if a.dataPath(t, s, "pkgs/a.rpm") == pa || b.dataPath(t, s, "pkgs/b.rpm") == pb {
		t.Error("different contents share a data path")
	}
	// A second store instance computes the same path.
	s2, err := New(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if p2 := b.dataPath(t, s2, moved.path); p2 != pa {
		t.Errorf("data path differs between store instances: %s, %s", pa, p2)
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
	pi, p := b.piece(tib, 2)
	buf := make([]byte, p.Length())
	if _, err := pi.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, b.clean[p.Offset():p.Offset()+p.Length()]) {
		t.Errorf("shared piece reads wrong through b (%v)", err)
	}
	// Closing one torrent leaves the other working.
	if err := tia.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pi.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, b.clean[p.Offset():p.Offset()+p.Length()]) {
		t.Errorf("shared piece after closing a: %v", err)
	}
}

func TestChangedBehindOurBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(t *testing.T, path string, size int)
	}{
		{"rewritten same size", func(t *testing.T, path string, size int) {
			if err := os.WriteFile(path, testkit.RandBytes(int64(size), 99), 0o644); err != nil {
				t.Fatal(err)
			}
			future := time.Now().Add(time.Hour)
			if err := os.Chtimes(path, future, future); err != nil {
				t.Fatal(err)
			}
		}},
		{"mtime only", func(t *testing.T, path string, size int) {
			past := time.Now().Add(-time.Hour)
			if err := os.Chtimes(path, past, past); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string, size int) {
			if err := os.Truncate(path, int64(size/2)); err != nil {
				t.Fatal(err)
			}
		}},
		{"removed", func(t *testing.T, path string, size int) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			b := newBatch(t, file("f", 3*pl+50, 20), file("g", 60, 21))
			ti := open(t, s, b)
			b.writeAll(t, ti)
			path := b.dataPath(t, s, "f")
			if !s.Complete(path) {
				t.Fatal("not complete after writing")
			}
			tc.modify(t, path, len(b.files[0].data))
			for i, c := range completions(b, ti)[:4] {
				if c.Ok && c.Complete {
					t.Errorf("piece %d still Complete after the data file was changed: %+v", i, c)
				}
			}
			if s.Complete(path) {
				t.Error("Store.Complete still true after the data file was changed")
			}
			// The other file is unaffected.
			if !s.Complete(b.dataPath(t, s, "g")) {
				t.Error("unrelated data file no longer complete")
			}
		})
	}
}

// After the data file is removed behind the store's back, downloading the
// piece again must produce a complete data file on disk.
func TestRewriteAfterRemoval(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := newBatch(t, file("f", pl+50, 30), file("g", 60, 31))
	ti := open(t, s, b)
	b.writeAll(t, ti)
	path := b.dataPath(t, s, "f")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	b.writeAll(t, ti) // the engine downloads it again
	for i, c := range completions(b, ti) {
		if !c.Ok || !c.Complete {
			t.Errorf("piece %d after downloading again: %+v", i, c)
		}
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, b.files[0].data) {
		t.Errorf("data file after downloading again: %d bytes, %v", len(got), err)
	}
}

func TestLayoutRejects(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
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
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	x := file("pkgs/x.rpm", 2*pl+77, 20)
	a := newBatch(t, file("pkgs/a.rpm", 300, 21), x)
	crafted := newBatch(t, x, file("pkgs/z.rpm", 10, 22))
	info := *crafted.info
	info.Pieces = slices.Clone(info.Pieces)
	first := torrentfile.NumPieces(300)
	n := torrentfile.NumPieces(int64(len(x.data)))
	copy(info.Pieces[:n*20], a.info.Pieces[first*20:(first+n)*20])
	crafted.info = &info
	if pa, pc := a.dataPath(t, s, x.path), crafted.dataPath(t, s, x.path); pa == pc {
		t.Errorf("the padded copy shares the unpadded file's data %s", pa)
	}
}

// Prune deletes unused data, least recently written first, keeps data of
// open torrents (also when shared with a closed one), and reports the disk
// use left.
func TestPrune(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shared := file("shared", 3*pl, 1)
	old := newBatch(t, file("old", 4*pl, 2), shared)
	live := newBatch(t, shared, file("live", 2*pl, 3))
	newer := newBatch(t, file("newer", 5*pl, 4))
	for i, b := range []*batch{old, newer, live} {
		ti, err := s.OpenTorrent(context.Background(), b.info, metainfo.Hash{})
		if err != nil {
			t.Fatal(err)
		}
		b.writeAll(t, ti)
		// Distinct mtimes, oldest first in this order.
		for _, f := range b.files {
			when := time.Now().Add(time.Duration(i-10) * time.Minute)
			os.Chtimes(b.dataPath(t, s, f.path), when, when)
		}
		if b != live {
			ti.Close()
		} else {
			t.Cleanup(func() { ti.Close() })
		}
	}
	exists := func(b *batch, path string) bool {
		_, err := os.Stat(b.dataPath(t, s, path))
		return err == nil
	}
	total, err := s.Prune(1 << 40)
	if err != nil || total < 14*pl {
		t.Fatalf("Prune(no cap) = %d, %v; want all %d bytes kept", total, err, 14*pl)
	}
	// Room for the live torrent and a bit: "old" goes (oldest), "newer" too
	// (still over), "shared" stays (the live torrent uses it).
	left, err := s.Prune(6 * pl)
	if err != nil {
		t.Fatal(err)
	}
	if exists(old, "old") || exists(newer, "newer") {
		t.Error("unused data was kept over the cap")
	}
	if !exists(live, "shared") || !exists(live, "live") {
		t.Error("data of an open torrent was deleted")
	}
	if left > 6*pl {
		t.Errorf("%d bytes left, want at most %d", left, 6*pl)
	}
	// Over a cap smaller than the live data: nothing in use is deleted.
	if left, err = s.Prune(pl); err != nil || left < 5*pl {
		t.Errorf("Prune below the live data = %d, %v", left, err)
	}
}

// An idle store is not measured again: with --max-disk the agent prunes
// every second, and walking every data file each time cost CPU while
// idle. A write makes the next Prune measure.
func TestPruneIdle(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
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
		s, err := New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
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
