package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// spans returns b's files as the store sees them, by path.
func (b *batch) spans(t *testing.T) map[string]torrentfile.Span {
	t.Helper()
	sps, err := torrentfile.Layout(b.info)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]torrentfile.Span{}
	for _, sp := range sps {
		m[sp.Path] = sp
	}
	return m
}

// key returns the content key of b's file at path.
func (b *batch) key(t *testing.T, path string) string {
	t.Helper()
	sp, ok := b.spans(t)[path]
	if !ok {
		t.Fatalf("%s is not in the batch", path)
	}
	return ContentKey(sp.Length, sp.Hashes, sp.Unpadded)
}

// packFiles lists the names in the store's pack directory.
func packFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, packDir))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// idxEntry is a line of a pack's index.
type idxEntry struct {
	key        string
	base, size int64
}

// readIndex parses the index of the pack at path.
func readIndex(t *testing.T, pack string) []idxEntry {
	t.Helper()
	data, err := os.ReadFile(pack + ".idx")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), "\n") {
		t.Errorf("index %s.idx does not end in a newline: %q", pack, data)
	}
	var es []idxEntry
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("index line %q: want key base size", line)
		}
		base, err1 := strconv.ParseInt(f[1], 10, 64)
		size, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("index line %q: %v %v", line, err1, err2)
		}
		es = append(es, idxEntry{f[0], base, size})
	}
	return es
}

// pieces returns the torrent's piece indexes of b's file at path.
func (b *batch) pieces(t *testing.T, path string) []int {
	t.Helper()
	sp, ok := b.spans(t)[path]
	if !ok {
		t.Fatalf("%s is not in the batch", path)
	}
	var is []int
	for j := range len(sp.Hashes) / 20 {
		is = append(is, sp.FirstPiece+j)
	}
	return is
}

// writeFile writes and marks every piece of b's file at path, as the
// engine does when it downloads the file.
func (b *batch) writeFile(t *testing.T, ti storage.TorrentImpl, path string) {
	t.Helper()
	for _, i := range b.pieces(t, path) {
		pi, p := b.piece(ti, i)
		if n, err := pi.WriteAt(b.stream[p.Offset():p.Offset()+p.Length()], 0); err != nil || n != int(p.Length()) {
			t.Fatalf("%s piece %d WriteAt = %d, %v", path, i, n, err)
		}
		if err := pi.MarkComplete(); err != nil {
			t.Fatal(err)
		}
	}
}

// rehash reads every piece of b's file at path, checks it and marks it
// complete, as the engine does when it hashes data of unknown completion.
func (b *batch) rehash(t *testing.T, ti storage.TorrentImpl, path string) {
	t.Helper()
	for _, i := range b.pieces(t, path) {
		pi, p := b.piece(ti, i)
		buf := make([]byte, p.Length())
		if _, err := pi.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, b.clean[p.Offset():p.Offset()+p.Length()]) {
			t.Fatalf("%s piece %d reads back wrong (%v)", path, i, err)
		}
		if err := pi.MarkComplete(); err != nil {
			t.Fatal(err)
		}
	}
}

// fileCompletion returns the completion of every piece of b's file at path.
func (b *batch) fileCompletion(t *testing.T, ti storage.TorrentImpl, path string) []storage.Completion {
	t.Helper()
	var cs []storage.Completion
	for _, i := range b.pieces(t, path) {
		pi, _ := b.piece(ti, i)
		cs = append(cs, pi.Completion())
	}
	return cs
}

// topLevel lists the entries of the store's directory.
func topLevel(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// The new contents of one Layout go into one pack: nothing on disk before
// the first write; after it, the pack and its index (listing every content
// of the pack, each at an aligned offset, one after the other), and no
// directory of data files of one content.
func TestOnePackPerLayout(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	var files []tfile
	for i, size := range []int64{1, pl - 1, pl, pl + 1, 4095, 4096, 4097, 3*pl + 7, 100} {
		files = append(files, file(fmt.Sprintf("p/%d.rpm", i), size, uint64(200+i)))
	}
	b := newBatch(t, files...)
	l := layout(t, s, b)
	ti := open(t, s, b)
	if names := topLevel(t, dir); len(names) != 0 {
		t.Errorf("on disk before any write: %v", names)
	}

	// One piece of the fourth file: the pack is made, its index complete.
	pi, p := b.piece(ti, b.pieces(t, files[3].path)[0])
	if _, err := pi.WriteAt(b.stream[p.Offset():p.Offset()+p.Length()], 0); err != nil {
		t.Fatal(err)
	}
	names := packFiles(t, dir)
	if len(names) != 2 || names[0]+".idx" != names[1] {
		t.Fatalf("pack directory after a write: %v, want a pack and its index", names)
	}
	pack := filepath.Join(dir, packDir, names[0])
	idx := readIndex(t, pack)
	if len(idx) != len(files) {
		t.Errorf("index lists %d contents after the first write, want all %d", len(idx), len(files))
	}

	b.writeAll(t, ti)
	if got := packFiles(t, dir); !slices.Equal(got, names) {
		t.Errorf("pack directory after writing everything: %v, want %v", got, names)
	}
	if got := readIndex(t, pack); !slices.Equal(got, idx) {
		t.Errorf("index changed by the writes: %v, was %v", got, idx)
	}
	for _, n := range topLevel(t, dir) {
		if n != packDir {
			t.Errorf("%s in the store directory, want only %s/", n, packDir)
		}
	}
	var end int64
	for i, f := range files {
		d, ok := l.Data(f.path)
		if !ok {
			t.Fatalf("Data(%s) not found", f.path)
		}
		want := idxEntry{b.key(t, f.path), d.Offset, int64(len(f.data))}
		if i < len(idx) && idx[i] != want {
			t.Errorf("index line %d: %+v, want %+v", i, idx[i], want)
		}
		if d.Path != pack {
			t.Errorf("%s is in %s, not in the batch's pack %s", f.path, d.Path, pack)
		}
		if d.Offset%packAlign != 0 || d.Offset < end {
			t.Errorf("%s at offset %d: not aligned to %d, or before the end %d of the previous content", f.path, d.Offset, packAlign, end)
		}
		end = d.Offset + int64(len(f.data))
		if got := readData(t, d, len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s: data reads back wrong (%d bytes)", f.path, len(got))
		}
		if !l.Complete(f.path) {
			t.Errorf("%s not Complete", f.path)
		}
	}
	if size := fileSize(pack); size != end {
		t.Errorf("pack has %d bytes, want %d (the last content's end)", size, end)
	}
}

// A Layout sharing a content with an earlier one maps it to the same data
// and puts only its new contents in a new pack; a Layout of contents all
// held makes no pack.
func TestSecondLayoutReusesContent(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	shared := file("pkgs/shared.rpm", 2*pl+99, 300)
	x, y := file("pkgs/x.rpm", 5000, 301), file("pkgs/y.rpm", pl+3, 302)
	a := newBatch(t, x, shared, y)
	b := newBatch(t, tfile{"other/shared.rpm", shared.data}, file("pkgs/z.rpm", 777, 303), file("pkgs/w.rpm", 10, 304))
	la, lb := layout(t, s, a), layout(t, s, b)
	tia, tib := open(t, s, a), open(t, s, b)
	a.writeAll(t, tia)
	packA := a.data(t, s, x.path).Path
	if got := packFiles(t, dir); len(got) != 2 {
		t.Fatalf("pack directory after writing a: %v", got)
	}
	if !lb.Complete("other/shared.rpm") {
		t.Error("the shared content is not complete in b after a wrote it")
	}
	b.writeAll(t, tib)

	da, _ := la.Data(shared.path)
	db, _ := lb.Data("other/shared.rpm")
	if da != db || da.Path != packA {
		t.Errorf("shared content: %+v in a, %+v in b; want both in a's pack %s", da, db, packA)
	}
	dz, _ := lb.Data("pkgs/z.rpm")
	dw, _ := lb.Data("pkgs/w.rpm")
	if dz.Path == packA || dw.Path != dz.Path {
		t.Errorf("b's new contents in %s and %s, want one new pack (a's is %s)", dz.Path, dw.Path, packA)
	}
	if got := packFiles(t, dir); len(got) != 4 {
		t.Errorf("pack directory after both: %v, want two packs and their indexes", got)
	}
	want := []idxEntry{
		{b.key(t, "pkgs/z.rpm"), 0, 777},
		{b.key(t, "pkgs/w.rpm"), packAlign, 10},
	}
	if got := readIndex(t, dz.Path); !slices.Equal(got, want) {
		t.Errorf("index of b's pack: %+v, want only b's new contents %+v", got, want)
	}
	if dz.Offset != 0 || dw.Offset != packAlign {
		t.Errorf("b's new contents at %d and %d, want 0 and %d", dz.Offset, dw.Offset, packAlign)
	}
	if es := readIndex(t, packA); len(es) != 3 {
		t.Errorf("a's index changed: %+v", es)
	}

	// Every content held: complete at once, no new pack, not even after a
	// piece is read.
	c := newBatch(t, x, y)
	lc := layout(t, s, c)
	tic := open(t, s, c)
	for _, f := range c.files {
		if !lc.Complete(f.path) {
			t.Errorf("%s held complete, not Complete in a new torrent", f.path)
		}
		if d, _ := lc.Data(f.path); d != a.data(t, s, f.path) {
			t.Errorf("%s: %+v in the new torrent, %+v in a", f.path, d, a.data(t, s, f.path))
		}
	}
	c.rehash(t, tic, y.path)
	if got := packFiles(t, dir); len(got) != 4 {
		t.Errorf("pack directory after a layout of held contents: %v", got)
	}
}

// Data written in an earlier run is held after a restart, at the same
// place, with its completion unknown (the engine hashes it); once hashed
// (or imported again) it is complete. A content of the index never written
// (beyond the pack's end) is known incomplete.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s1 := newStore(t, dir)
	b := newBatch(t, file("a", 2*pl+5, 400), file("b", pl, 401), file("c", 700, 402))
	// A second batch written only in part: its last content never.
	part := newBatch(t, file("p", pl+9, 403), file("q", 2*pl, 404))
	ti1, err := s1.OpenTorrent(context.Background(), b.info, metainfo.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	tp1, err := s1.OpenTorrent(context.Background(), part.info, metainfo.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	b.writeAll(t, ti1)
	part.writeFile(t, tp1, "p")
	before := map[string]Data{}
	for _, f := range b.files {
		before[f.path] = b.data(t, s1, f.path)
	}
	dp := part.data(t, s1, "p")
	dq := part.data(t, s1, "q")
	if err := ti1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tp1.Close(); err != nil {
		t.Fatal(err)
	}
	packs := packFiles(t, dir)

	s2 := newStore(t, dir)
	for path, sp := range b.spans(t) {
		if !s2.Holds(sp) {
			t.Errorf("%s not held after a restart", path)
		}
	}
	if !s2.Holds(part.spans(t)["p"]) {
		t.Error("p not held after a restart")
	}
	never := newBatch(t, file("n", 100, 405))
	if s2.Holds(never.spans(t)["n"]) {
		t.Error("a content never laid out is held")
	}

	l := layout(t, s2, b)
	ti := open(t, s2, b)
	for _, f := range b.files {
		if d, ok := l.Data(f.path); !ok || d != before[f.path] {
			t.Errorf("%s after a restart at %+v, before at %+v", f.path, d, before[f.path])
		}
		if l.Complete(f.path) {
			t.Errorf("%s Complete after a restart, before hashing", f.path)
		}
		for j, c := range b.fileCompletion(t, ti, f.path) {
			if c.Err != nil || c.Ok {
				t.Errorf("%s piece %d after a restart: %+v, want unknown (Ok false)", f.path, j, c)
			}
		}
	}
	if held := l.Held(); len(held) != 0 {
		t.Errorf("Held after a restart, before hashing: %v", held)
	}

	lp := layout(t, s2, part)
	tp := open(t, s2, part)
	if d, _ := lp.Data("p"); d != dp {
		t.Errorf("p after a restart at %+v, before at %+v", d, dp)
	}
	// q was never written (its place lies past the pack's end): it is not
	// held, and goes into a new pack.
	dq2, _ := lp.Data("q")
	if dq2 == dq || dq2.Offset != 0 {
		t.Errorf("q, never written, after a restart at %+v, want the start of a new pack (before at %+v)", dq2, dq)
	}
	for j, c := range part.fileCompletion(t, tp, "q") {
		if c.Err != nil || !c.Ok || c.Complete {
			t.Errorf("q piece %d, never written: %+v, want known incomplete", j, c)
		}
	}

	// The engine hashes a and b; c comes through Import.
	hooks := newHookLog(s2)
	b.rehash(t, ti, "a")
	b.rehash(t, ti, "b")
	if n, err := l.Import("c", bytes.NewReader(b.files[2].data)); err != nil || n != 700 {
		t.Errorf("Import(c) after a restart = %d, %v", n, err)
	}
	for _, f := range b.files {
		if !l.Complete(f.path) {
			t.Errorf("%s not Complete after hashing", f.path)
		}
		for j, c := range b.fileCompletion(t, ti, f.path) {
			if !c.Ok || !c.Complete {
				t.Errorf("%s piece %d after hashing: %+v", f.path, j, c)
			}
		}
		if got := readData(t, before[f.path], len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s reads back wrong after a restart", f.path)
		}
		if len(hooks.pieces(b.key(t, f.path))) != len(b.pieces(t, f.path)) {
			t.Errorf("%s: OnComplete told of %v", f.path, hooks.pieces(b.key(t, f.path)))
		}
	}
	if held := l.Held(); len(held) != len(b.files) {
		t.Errorf("Held after hashing: %v", held)
	}
	part.writeFile(t, tp, "q")
	if !lp.Complete("q") || fileSize(dq2.Path) != 2*pl {
		t.Errorf("q written after a restart: Complete %v, pack of %d bytes", lp.Complete("q"), fileSize(dq2.Path))
	}
	if got := packFiles(t, dir); len(got) != len(packs)+2 {
		t.Errorf("packs after a restart: %v, want the earlier run's %v and q's", got, packs)
	}
}

// An index that does not parse leaves its pack unused: New does not fail
// (nor panic), the contents are laid out anew in a new pack, and Prune
// deletes the old one. A pack without an index is not loaded either.
func TestMalformedIndex(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(idx string) string // the new index; "-" removes it
	}{
		{"garbage line", func(idx string) string { return idx + "garbage\n" }},
		{"garbage first", func(idx string) string { return "\x00\xff nonsense 1 2 3\n" + idx }},
		{"blank line", func(idx string) string { return strings.Replace(idx, "\n", "\n\n", 1) }},
		{"empty", func(string) string { return "" }},
		{"non-hex key", func(idx string) string { return "zz" + idx[2:] }},
		{"upper-case key", func(idx string) string { return strings.ToUpper(idx[:40]) + idx[40:] }},
		{"short key", func(idx string) string { return idx[1:] }},
		{"negative size", func(idx string) string { return editField(idx, 2, "-5") }},
		{"negative base", func(idx string) string { return editField(idx, 1, "-4096") }},
		{"misaligned base", func(idx string) string { return editField(idx, 1, "100") }},
		{"size not a number", func(idx string) string { return editField(idx, 2, "big") }},
		{"missing field", func(idx string) string { return editField(idx, 2, "") }},
		{"no index", func(string) string { return "-" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s1 := newStore(t, dir)
			b := newBatch(t, file("a", pl+10, 500), file("b", 3*pl, 501), file("c", 99, 502))
			ti1, err := s1.OpenTorrent(context.Background(), b.info, metainfo.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			b.writeAll(t, ti1)
			old := b.data(t, s1, "a").Path
			ti1.Close()
			idx, err := os.ReadFile(old + ".idx")
			if err != nil {
				t.Fatal(err)
			}
			if spoiled := tc.spoil(string(idx)); spoiled == "-" {
				err = os.Remove(old + ".idx")
			} else {
				err = os.WriteFile(old+".idx", []byte(spoiled), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}

			s2, err := New(dir)
			if err != nil {
				t.Fatalf("New with a spoiled index: %v", err)
			}
			for path, sp := range b.spans(t) {
				if s2.Holds(sp) {
					t.Errorf("%s held through a spoiled index", path)
				}
			}
			l := layout(t, s2, b)
			ti := open(t, s2, b)
			for _, f := range b.files {
				if d, _ := l.Data(f.path); d.Path == old {
					t.Errorf("%s laid out in the pack of the spoiled index", f.path)
				}
			}
			for i, c := range completions(b, ti) {
				if c.Err != nil || !c.Ok || c.Complete {
					t.Errorf("piece %d laid out anew: %+v, want known incomplete", i, c)
				}
			}
			b.writeAll(t, ti)
			for _, f := range b.files {
				if got := readData(t, b.data(t, s2, f.path), len(f.data)); !bytes.Equal(got, f.data) || !l.Complete(f.path) {
					t.Errorf("%s written anew: reads back %d bytes, Complete %v", f.path, len(got), l.Complete(f.path))
				}
			}
			if _, err := s2.Prune(0); err != nil {
				t.Fatal(err)
			}
			if fileSize(old) >= 0 || fileSize(old+".idx") >= 0 {
				t.Error("Prune kept the pack of the spoiled index")
			}
			for _, f := range b.files {
				if !l.Complete(f.path) {
					t.Errorf("%s, in use, no longer Complete after Prune", f.path)
				}
			}
		})
	}
}

// editField sets field i (0 key, 1 base, 2 size) of the index's first line.
func editField(idx string, i int, v string) string {
	line, rest, _ := strings.Cut(idx, "\n")
	f := strings.Fields(line)
	f[i] = v
	return strings.TrimSpace(strings.Join(f, " ")) + "\n" + rest
}

// A data file of one content, as stores kept before packs, is used where
// it lies; the batch's other contents go into a pack.
func TestLegacyDataFile(t *testing.T) {
	dir := t.TempDir()
	b := newBatch(t, file("old.rpm", pl+10, 600), file("new.rpm", 300, 601))
	key := b.key(t, "old.rpm")
	legacy := filepath.Join(dir, key[:2], key)
	if err := os.MkdirAll(filepath.Dir(legacy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, b.files[0].data, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, dir)
	sps := b.spans(t)
	if !s.Holds(sps["old.rpm"]) {
		t.Error("the legacy data file is not held")
	}
	if s.Holds(sps["new.rpm"]) {
		t.Error("a content never written is held")
	}
	l := layout(t, s, b)
	ti := open(t, s, b)
	if d, _ := l.Data("old.rpm"); d != (Data{legacy, 0}) {
		t.Errorf("Data(old.rpm) = %+v, want the legacy file %s at 0", d, legacy)
	}
	dn, _ := l.Data("new.rpm")
	if filepath.Dir(dn.Path) != filepath.Join(dir, packDir) {
		t.Errorf("Data(new.rpm) = %+v, want a pack", dn)
	}
	for j, c := range b.fileCompletion(t, ti, "old.rpm") {
		if c.Err != nil || c.Ok {
			t.Errorf("old.rpm piece %d: %+v, want unknown", j, c)
		}
	}
	for j, c := range b.fileCompletion(t, ti, "new.rpm") {
		if c.Err != nil || !c.Ok || c.Complete {
			t.Errorf("new.rpm piece %d: %+v, want known incomplete", j, c)
		}
	}
	b.rehash(t, ti, "old.rpm")
	b.writeFile(t, ti, "new.rpm")
	for _, f := range b.files {
		if !l.Complete(f.path) {
			t.Errorf("%s not Complete", f.path)
		}
		if got := readData(t, b.data(t, s, f.path), len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s reads back wrong", f.path)
		}
	}
	if got, err := os.ReadFile(legacy); err != nil || !bytes.Equal(got, b.files[0].data) {
		t.Errorf("legacy file changed: %d bytes, %v", len(got), err)
	}
	if es := readIndex(t, dn.Path); len(es) != 1 || es[0].key != b.key(t, "new.rpm") {
		t.Errorf("the pack's index lists %+v, want only new.rpm", es)
	}
}

// Prune deletes an unused pack whole, with its index (and an index being
// written), before the packs written after it; it keeps a pack in use,
// also one from an earlier run; a legacy data file is a unit of its own.
// What it deletes is no longer held, and is laid out anew.
func TestPrunePacks(t *testing.T) {
	dir := t.TempDir()
	unused := newBatch(t, file("u1", 2*pl, 700), file("u2", pl, 701))
	legacyB := newBatch(t, file("l1", pl, 702), file("l2", 10, 703))
	key := legacyB.key(t, "l1")
	legacy := filepath.Join(dir, key[:2], key)
	if err := os.MkdirAll(filepath.Dir(legacy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, legacyB.files[0].data, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, dir)
	inUse := newBatch(t, file("i1", 3*pl, 704), file("i2", 5, 705))
	later := newBatch(t, file("n1", pl, 706))
	tu, err := s.OpenTorrent(context.Background(), unused.info, metainfo.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	unused.writeAll(t, tu)
	tu.Close()
	ti := open(t, s, inUse)
	inUse.writeAll(t, ti)
	tl, err := s.OpenTorrent(context.Background(), later.info, metainfo.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	later.writeAll(t, tl)
	tl.Close()
	pu, pi, pl2 := unused.data(t, s, "u1").Path, inUse.data(t, s, "i1").Path, later.data(t, s, "n1").Path
	if err := os.WriteFile(pu+".idx.tmp", []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The legacy file oldest, then the unused pack, the one in use, the
	// later one.
	for i, ps := range [][]string{{legacy}, {pu, pu + ".idx", pu + ".idx.tmp"}, {pi, pi + ".idx"}, {pl2, pl2 + ".idx"}} {
		when := time.Now().Add(time.Duration(i-10) * time.Minute)
		for _, p := range ps {
			if err := os.Chtimes(p, when, when); err != nil {
				t.Fatal(err)
			}
		}
	}
	total, err := s.Prune(1 << 40)
	if err != nil {
		t.Fatal(err)
	}
	// Just under the total: the legacy file (the oldest unit) goes alone.
	left, err := s.Prune(total - 1)
	if err != nil {
		t.Fatal(err)
	}
	if fileSize(legacy) >= 0 {
		t.Error("the oldest unit, a legacy data file, was kept")
	}
	if fileSize(pu) < 0 || fileSize(pu+".idx") < 0 {
		t.Error("the unused pack went though deleting the older legacy file was enough")
	}
	if left > total-1 {
		t.Errorf("%d bytes left of %d", left, total)
	}
	if s.Holds(legacyB.spans(t)["l1"]) {
		t.Error("the pruned legacy data file is still held")
	}
	// Nothing at all: only the pack in use stays.
	if left, err = s.Prune(0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pu, pu + ".idx", pu + ".idx.tmp", pl2, pl2 + ".idx"} {
		if fileSize(p) >= 0 {
			t.Errorf("%s kept, unused", p)
		}
	}
	if fileSize(pi) < 0 || fileSize(pi+".idx") < 0 {
		t.Fatal("the pack in use was deleted")
	}
	if left < 3*pl {
		t.Errorf("%d bytes left, want the pack in use (at least %d)", left, 3*pl)
	}
	if got := packFiles(t, dir); !slices.Equal(got, []string{filepath.Base(pi), filepath.Base(pi) + ".idx"}) {
		t.Errorf("pack directory after Prune(0): %v", got)
	}
	for _, f := range inUse.files {
		if got := readData(t, inUse.data(t, s, f.path), len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s, in use, reads back wrong after Prune", f.path)
		}
	}
	for path, sp := range unused.spans(t) {
		if s.Holds(sp) {
			t.Errorf("%s of the pruned pack is still held", path)
		}
	}
	// Downloaded again, into a new pack.
	tu = open(t, s, unused)
	if d := unused.data(t, s, "u1"); d.Path == pu || d.Path == pi {
		t.Errorf("u1 laid out again in %s", d.Path)
	}
	for i, c := range completions(unused, tu) {
		if !c.Ok || c.Complete {
			t.Errorf("piece %d of the pruned pack: %+v, want known incomplete", i, c)
		}
	}
	unused.writeAll(t, tu)
	for _, f := range unused.files {
		if got := readData(t, unused.data(t, s, f.path), len(f.data)); !bytes.Equal(got, f.data) || !unused.complete(t, s, f.path) {
			t.Errorf("%s downloaded again: wrong or not Complete", f.path)
		}
	}

	// In a new run, a pack of the earlier one is unused until laid out.
	s2 := newStore(t, dir)
	l2 := layout(t, s2, inUse)
	if _, err := s2.Prune(0); err != nil {
		t.Fatal(err)
	}
	if fileSize(pi) < 0 {
		t.Error("a pack laid out in the new run was deleted")
	}
	if fileSize(unused.data(t, s, "u1").Path) >= 0 {
		t.Error("a pack of the earlier run, unused in the new one, was kept")
	}
	l2.Close()
	if _, err := s2.Prune(0); err != nil {
		t.Fatal(err)
	}
	if fileSize(pi) >= 0 {
		t.Error("a pack no longer in use was kept")
	}
}

// A pack changed behind the store's back, then one of its contents
// written again, by the engine or by Import (a direct fetch), before the
// change was seen by a completion query of the other contents: the pack
// gets a new stamp from the store's own write, and the other contents,
// whose bytes went with the change, must not be complete then.
func TestPackChangedThenRewritten(t *testing.T) {
	for _, tc := range []struct {
		name   string
		open   bool // a torrent keeps the pack open meanwhile
		change func(t *testing.T, path string, g Data)
		write  string // "engine" or "import"
	}{
		{"removed while closed, engine", false, removePack, "engine"},
		{"removed while closed, import", false, removePack, "import"},
		{"truncated while open, import", true, truncatePack, "import"},
		{"truncated while closed, import", false, truncatePack, "import"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, t.TempDir())
			b := newBatch(t, file("f", 2*pl+50, 800), file("g", pl+60, 801))
			ti1, err := s.OpenTorrent(context.Background(), b.info, metainfo.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			b.writeAll(t, ti1)
			if !tc.open {
				ti1.Close()
			} else {
				t.Cleanup(func() { ti1.Close() })
			}
			d, dg := b.data(t, s, "f"), b.data(t, s, "g")
			tc.change(t, d.Path, dg)
			ti := open(t, s, b)
			l := layout(t, s, b)
			switch tc.write {
			case "engine":
				// The engine finds f missing and downloads it again.
				for j, c := range b.fileCompletion(t, ti, "f") {
					if !c.Ok || c.Complete {
						t.Errorf("f piece %d after its pack was changed: %+v", j, c)
					}
				}
				b.writeFile(t, ti, "f")
			case "import":
				if l.Complete("f") {
					t.Error("f Complete after its pack was changed")
				}
				if _, err := l.Import("f", bytes.NewReader(b.files[0].data)); err != nil {
					t.Fatal(err)
				}
			}
			if !l.Complete("f") {
				t.Error("f not Complete after writing it again")
			}
			if l.Complete("g") {
				t.Errorf("g Complete, its data gone with the change (pack now %d bytes, g at %d)", fileSize(d.Path), dg.Offset)
			}
			if _, ok := l.Held()["g"]; ok {
				t.Error("g Held, its data gone with the change")
			}
			for j, c := range b.fileCompletion(t, ti, "g") {
				if c.Ok && c.Complete {
					t.Errorf("g piece %d: %+v, its data gone with the change", j, c)
				}
			}
		})
	}
}

func removePack(t *testing.T, path string, _ Data) {
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// truncatePack cuts the pack where g begins.
func truncatePack(t *testing.T, path string, g Data) {
	if err := os.Truncate(path, g.Offset); err != nil {
		t.Fatal(err)
	}
}

// Contents of one pack written at once (the engine downloads a batch's
// files in parallel), asked of meanwhile: the store's own writes to the
// shared file never look like a change behind its back.
func TestPackConcurrentWrites(t *testing.T) {
	s := newStore(t, t.TempDir())
	var files []tfile
	for i := range 8 {
		files = append(files, file(fmt.Sprintf("c/%d.rpm", i), int64(3*pl+i*1000+1), uint64(900+i)))
	}
	b := newBatch(t, files...)
	l := layout(t, s, b)
	ti := open(t, s, b)
	pieces := map[string][]int{}
	for _, f := range files {
		pieces[f.path] = b.pieces(t, f.path)
	}
	var wg sync.WaitGroup
	for _, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range pieces[f.path] {
				pi, p := b.piece(ti, i)
				if _, err := pi.WriteAt(b.stream[p.Offset():p.Offset()+p.Length()], 0); err != nil {
					t.Error(err)
					return
				}
				if err := pi.MarkComplete(); err != nil {
					t.Error(err)
				}
				// Others ask of every file meanwhile.
				for _, g := range files {
					l.Complete(g.path)
				}
				l.Held()
				for _, g := range files {
					for _, j := range pieces[g.path] {
						pj, _ := b.piece(ti, j)
						pj.Completion()
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range files {
		if !l.Complete(f.path) {
			t.Errorf("%s not Complete after concurrent writes", f.path)
		}
		if got := readData(t, b.data(t, s, f.path), len(f.data)); !bytes.Equal(got, f.data) {
			t.Errorf("%s reads back wrong", f.path)
		}
	}
	for i, c := range completions(b, ti) {
		if !c.Ok || !c.Complete {
			t.Errorf("piece %d after concurrent writes: %+v", i, c)
		}
	}
}

// After a restart, a content the index lists but no run ever wrote (its
// batch was not downloaded whole) is not held: the store has no data for
// it (before packs, Holds wanted a data file of some bytes).
func TestRestartHoldsOnlyWritten(t *testing.T) {
	dir := t.TempDir()
	s1 := newStore(t, dir)
	b := newBatch(t, file("p", pl+9, 950), file("q", 2*pl, 951))
	ti, err := s1.OpenTorrent(context.Background(), b.info, metainfo.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	b.writeFile(t, ti, "p")
	ti.Close()
	if fileSize(b.data(t, s1, "q").Path) > b.data(t, s1, "q").Offset {
		t.Fatal("the pack reaches q")
	}
	s2 := newStore(t, dir)
	if !s2.Holds(b.spans(t)["p"]) {
		t.Error("p, written, not held after a restart")
	}
	if s2.Holds(b.spans(t)["q"]) {
		t.Error("q held after a restart, though never written (its place in the pack is past the pack's end)")
	}
}

// An empty file holds nothing to download or verify: it is complete and
// held from the start, and needs no pack.
func TestEmptyContent(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	b := newBatch(t, file("empty", 0, 1), file("z", 100, 2))
	l := layout(t, s, b)
	if !l.Complete("empty") || l.Complete("z") {
		t.Errorf("Complete: empty %v, z %v; want true, false", l.Complete("empty"), l.Complete("z"))
	}
	if held := l.Held(); len(held) != 1 {
		t.Errorf("Held = %v, want only the empty file", held)
	}
	if n, err := l.Import("empty", bytes.NewReader(nil)); n != 0 || err != nil {
		t.Errorf("Import of the empty file = %d, %v", n, err)
	}
	if got := packFiles(t, dir); len(got) != 0 {
		t.Errorf("files on disk for an empty content: %v", got)
	}
}
