package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/anacrolix/torrent/storage"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// hookLog records the store's completion notices.
type hookLog struct {
	mu   sync.Mutex
	seen map[string][]int // content key -> pieces, in order
}

func newHookLog(s *Store) *hookLog {
	h := &hookLog{seen: map[string][]int{}}
	s.OnComplete(func(key string, piece int) {
		h.mu.Lock()
		h.seen[key] = append(h.seen[key], piece)
		h.mu.Unlock()
	})
	return h
}

func (h *hookLog) pieces(key string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.seen[key]...)
}

// layout opens b's layout in s until the test ends.
func layout(t *testing.T, s *Store, b *batch) *Torrent {
	t.Helper()
	l, err := s.Layout(b.info)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fileCompletions returns the engine's completion of every piece of the
// batch file f (index i of b.files), as the engine sees it through ti.
func fileCompletions(t *testing.T, b *batch, ti storage.TorrentImpl, i int) []storage.Completion {
	t.Helper()
	spans, err := torrentfile.Layout(b.info)
	if err != nil {
		t.Fatal(err)
	}
	sp := spans[i]
	var cs []storage.Completion
	for j := range len(sp.Hashes) / 20 {
		pi, _ := b.piece(ti, sp.FirstPiece+j)
		cs = append(cs, pi.Completion())
	}
	return cs
}

// A batch whose files arrive whole through Import: a non-last file with a
// partial last piece (padded hash), one of whole pieces spanning more than
// one import chunk, and the last file, with its unpadded last piece. Every
// piece is complete, for the engine too, each told once to the hook, and
// the data files hold exactly the files.
func TestImportComplete(t *testing.T) {
	s := newStore(t, t.TempDir())
	hooks := newHookLog(s)
	b := newBatch(t,
		file("a/partial.rpm", 3*pl+100, 21),
		file("b/chunks.rpm", (importChunk/pl+2)*pl, 22),
		file("c/last.rpm", pl+777, 23),
	)
	l := layout(t, s, b)
	if held := l.Held(); len(held) != 0 {
		t.Fatalf("Held before any import: %v", held)
	}
	for _, f := range b.files {
		n, err := l.Import(f.path, bytes.NewReader(f.data))
		if err != nil {
			t.Fatalf("Import(%s): %v", f.path, err)
		}
		if n != int64(len(f.data)) {
			t.Errorf("Import(%s) wrote %d bytes, want %d", f.path, n, len(f.data))
		}
	}
	held := l.Held()
	if len(held) != len(b.files) {
		t.Errorf("Held: %d files, want %d: %v", len(held), len(b.files), held)
	}
	ti := open(t, s, b)
	for i, f := range b.files {
		d := b.data(t, s, f.path)
		if held[f.path] != d {
			t.Errorf("Held()[%s] = %+v, want the file's data %+v", f.path, held[f.path], d)
		}
		if !l.Complete(f.path) {
			t.Errorf("%s: not Complete after Import", f.path)
		}
		if got := readData(t, d, len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s: data has %d bytes (or other bytes), not the file's %d", f.path, len(got), len(f.data))
		}
		for j, c := range fileCompletions(t, b, ti, i) {
			if !c.Ok || !c.Complete {
				t.Errorf("%s piece %d: %+v, want complete", f.path, j, c)
			}
		}
		key := ContentKey(int64(len(f.data)), l.byPath[f.path].hashes, i == len(b.files)-1)
		want := make([]int, torrentfile.NumPieces(int64(len(f.data))))
		for j := range want {
			want[j] = j
		}
		if got := hooks.pieces(key); !equalInts(got, want) {
			t.Errorf("%s: OnComplete told of pieces %v, want %v", f.path, got, want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// failReader fails every read: Import must not read a complete file.
type failReader struct{ reads int }

func (r *failReader) Read([]byte) (int, error) {
	r.reads++
	return 0, errors.New("read a file already complete")
}

// A data file complete already (here from another torrent holding the same
// content) is left alone: nothing read, nothing written, no hook.
func TestImportAlreadyComplete(t *testing.T) {
	s := newStore(t, t.TempDir())
	shared := file("pkgs/shared.rpm", 2*pl+99, 31)
	a := newBatch(t, shared, file("pkgs/a.rpm", 10, 32))
	b := newBatch(t, file("pkgs/b.rpm", 5000, 33), tfile{"other/shared.rpm", shared.data}, file("pkgs/z.rpm", 7, 34))
	la := layout(t, s, a)
	if _, err := la.Import(shared.path, bytes.NewReader(shared.data)); err != nil {
		t.Fatal(err)
	}
	d := a.data(t, s, shared.path)
	before, err := os.Stat(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	hooks := newHookLog(s)
	lb := layout(t, s, b)
	if got := lb.Held(); len(got) != 1 || got["other/shared.rpm"] != d {
		t.Errorf("b holds %v, want only other/shared.rpm at %+v", got, d)
	}
	for _, l := range []*Torrent{la, lb} {
		name := shared.path
		if l == lb {
			name = "other/shared.rpm"
		}
		r := &failReader{}
		n, err := l.Import(name, r)
		if n != 0 || err != nil || r.reads != 0 {
			t.Errorf("Import of a complete file: %d bytes, %v, %d reads; want 0 bytes, no error, no read", n, err, r.reads)
		}
	}
	after, err := os.Stat(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Errorf("data file rewritten: %v %d -> %v %d", before.ModTime(), before.Size(), after.ModTime(), after.Size())
	}
	if len(hooks.seen) != 0 {
		t.Errorf("OnComplete called for a complete file: %v", hooks.seen)
	}
	if !la.Complete(shared.path) || !lb.Complete("other/shared.rpm") {
		t.Error("no longer Complete")
	}
}

// Content with a wrong piece: Import fails naming that piece (its index in
// the file, also past the first import chunk); the pieces before it are
// complete and told to the hook, the ones from it on are not; nothing of
// the bad piece is written.
func TestImportBadPiece(t *testing.T) {
	chunkPieces := importChunk / pl
	for _, tc := range []struct {
		name string
		size int
		bad  int // piece to spoil
	}{
		{"first piece", 3*pl + 5, 0},
		{"middle piece", 3*pl + 5, 2},
		{"partial last piece", 3*pl + 5, 3},
		{"second chunk", (chunkPieces+3)*pl + 10, chunkPieces + 1},
		{"chunk boundary", (chunkPieces+3)*pl + 10, chunkPieces},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, t.TempDir())
			hooks := newHookLog(s)
			f := file("x/bad.rpm", int64(tc.size), 41)
			b := newBatch(t, f, file("x/last.rpm", 100, 42))
			l := layout(t, s, b)
			spoiled := bytes.Clone(f.data)
			spoiled[tc.bad*pl] ^= 0xFF
			n, err := l.Import(f.path, bytes.NewReader(spoiled))
			if err == nil || !strings.Contains(err.Error(), "piece "+strconv.Itoa(tc.bad)+" ") {
				t.Fatalf("Import with piece %d spoiled: %v, want an error naming piece %d", tc.bad, err, tc.bad)
			}
			if n != int64(tc.bad*pl) {
				t.Errorf("wrote %d bytes, want the %d before the bad piece", n, tc.bad*pl)
			}
			ti := open(t, s, b)
			for j, c := range fileCompletions(t, b, ti, 0) {
				if want := j < tc.bad; c.Complete != want {
					t.Errorf("piece %d: %+v, want complete %v", j, c, want)
				}
			}
			d := b.data(t, s, f.path)
			if l.Complete(f.path) {
				t.Error("file Complete")
			}
			if held := l.Held(); len(held) != 0 {
				t.Errorf("Held: %v", held)
			}
			got := hooks.pieces(ContentKey(int64(tc.size), l.byPath[f.path].hashes, false))
			if len(got) != tc.bad {
				t.Errorf("OnComplete told of pieces %v, want the %d before the bad one", got, tc.bad)
			}
			if size := fileSize(d.Path); size > d.Offset+n {
				t.Errorf("data file has %d bytes, beyond the %d good ones at %d", size, n, d.Offset)
			}
			if data := readData(t, d, tc.size); int64(len(data)) > n || !bytes.Equal(data, f.data[:len(data)]) {
				t.Errorf("data holds %d bytes, beyond the %d good ones or not the file's", len(data), n)
			}
			// The right content still goes in afterwards.
			if _, err := l.Import(f.path, bytes.NewReader(f.data)); err != nil {
				t.Fatalf("Import of the right content after a bad one: %v", err)
			}
			if !l.Complete(f.path) {
				t.Error("not Complete after importing the right content")
			}
			if data := readData(t, d, tc.size); !bytes.Equal(data, f.data) {
				t.Error("data after importing the right content is not the file's")
			}
		})
	}
}

// Content shorter or longer than the file is refused; a file not in the
// torrent too. The data file never holds bytes beyond the file's size.
func TestImportWrongSize(t *testing.T) {
	for _, last := range []bool{false, true} {
		name := "not last"
		if last {
			name = "last"
		}
		t.Run(name, func(t *testing.T) {
			s := newStore(t, t.TempDir())
			// The file ends in zeros: cut short, its padded last piece
			// hashes the same as the whole one.
			f := file("y/file.rpm", 2*pl+300, 51)
			clear(f.data[len(f.data)-50:])
			files := []tfile{f, file("y/other.rpm", 999, 52)}
			if last {
				files = []tfile{files[1], f}
			}
			b := newBatch(t, files...)
			l := layout(t, s, b)
			d := b.data(t, s, f.path)
			for _, c := range []struct {
				what string
				data []byte
			}{
				{"one byte short", f.data[:len(f.data)-1]},
				{"the zeros cut", f.data[:len(f.data)-50]},
				{"a piece short", f.data[:2*pl]},
				{"empty", nil},
			} {
				if _, err := l.Import(f.path, bytes.NewReader(c.data)); err == nil {
					t.Errorf("%s: Import succeeded", c.what)
				}
				if l.Complete(f.path) || len(l.Held()) != 0 {
					t.Errorf("%s: the file is complete", c.what)
				}
			}
			_, err := l.Import(f.path, io.MultiReader(bytes.NewReader(f.data), strings.NewReader("x")))
			if err == nil || !strings.Contains(err.Error(), "more than") {
				t.Errorf("one byte long: %v, want an error saying more than the torrent's bytes", err)
			}
			if size := fileSize(d.Path); size > d.Offset+int64(len(f.data)) {
				t.Errorf("data file has %d bytes, the file ends at %d", size, d.Offset+int64(len(f.data)))
			}
			if data := readData(t, d, len(f.data)); !bytes.Equal(data, f.data[:len(data)]) {
				t.Error("data holds other bytes than the file's")
			}
			if _, err := l.Import("y/nonexistent.rpm", bytes.NewReader(f.data)); err == nil {
				t.Error("Import of a path not in the torrent succeeded")
			}
		})
	}
}
