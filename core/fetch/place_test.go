package fetch

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

const pl = torrentfile.PieceLength

// expectFor returns what the torrent would say about data: padded piece
// hashes, or with the unpadded tail when the file is last in its torrent.
func expectFor(t *testing.T, data []byte, tail bool) expect {
	t.Helper()
	h, err := torrentfile.HashReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	pieces := slices.Clone(h.Pieces)
	if tail && len(pieces) > 0 {
		copy(pieces[len(pieces)-20:], h.Tail[:])
	}
	sum := sha256.Sum256(data)
	return expect{size: int64(len(data)), pieces: pieces, tail: tail, sha256: sum[:]}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dirNames lists dir, failing on error.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestPlaceGood(t *testing.T) {
	for _, size := range []int64{0, 1, pl - 1, pl, pl + 1, 3*pl + 77} {
		for _, tail := range []bool{false, true} {
			srcDir, outDir := t.TempDir(), t.TempDir()
			data := testkit.RandBytes(size, uint64(size))
			src := filepath.Join(srcDir, "data")
			writeFile(t, src, data)
			out := filepath.Join(outDir, "pkg.rpm")
			want := expectFor(t, data, tail)
			if err := place(filepath.Dir(src), source{path: src}, out, want); err != nil {
				t.Errorf("size %d tail %v: place: %v", size, tail, err)
				continue
			}
			if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
				t.Errorf("size %d tail %v: output differs (%v)", size, tail, err)
			}
			if names := dirNames(t, outDir); !slices.Equal(names, []string{"pkg.rpm"}) {
				t.Errorf("size %d tail %v: output directory holds %q", size, tail, names)
			}
			if got, _ := os.ReadFile(src); !bytes.Equal(got, data) {
				t.Errorf("size %d tail %v: source changed", size, tail)
			}
			// Without a sha256 it is checked by pieces alone.
			want.sha256 = nil
			if err := place(filepath.Dir(src), source{path: src}, out, want); err != nil {
				t.Errorf("size %d tail %v: place without sha256: %v", size, tail, err)
			}
		}
	}
}

func TestPlaceReplacesExisting(t *testing.T) {
	dir := t.TempDir()
	data := testkit.RandBytes(pl+10, 1)
	src := filepath.Join(dir, "src")
	writeFile(t, src, data)
	out := filepath.Join(dir, "out")
	writeFile(t, out, []byte("old contents"))
	if err := place(filepath.Dir(src), source{path: src}, out, expectFor(t, data, false)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("existing output not replaced")
	}
}

func TestPlaceDoesNotFollowSymlink(t *testing.T) {
	dir := t.TempDir()
	data := testkit.RandBytes(2*pl+3, 2)
	src := filepath.Join(dir, "src")
	writeFile(t, src, data)
	victim := filepath.Join(dir, "victim")
	writeFile(t, victim, []byte("precious"))
	out := filepath.Join(dir, "out")
	if err := os.Symlink(victim, out); err != nil {
		t.Fatal(err)
	}
	if err := place(filepath.Dir(src), source{path: src}, out, expectFor(t, data, true)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(out)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("output is %v, want a regular file", fi.Mode())
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("output does not hold the file")
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Errorf("symlink target modified: %q", got)
	}
	// A dangling symlink is replaced too.
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), out); err != nil {
		t.Fatal(err)
	}
	if err := place(filepath.Dir(src), source{path: src}, out, expectFor(t, data, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Errorf("dangling symlink target created: %v", err)
	}
}

func TestPlaceRejects(t *testing.T) {
	data := testkit.RandBytes(3*pl+5, 3)
	good := expectFor(t, data, false)
	pieces := good
	pieces.sha256 = nil

	corrupt := func(i int) []byte {
		b := slices.Clone(data)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name string
		src  []byte
		want expect
		msg  string
	}{
		{"wrong sha256", data, func() expect {
			w := good
			w.sha256 = bytes.Repeat([]byte{7}, 32)
			return w
		}(), "sha256"},
		// With the caller's sha256, it decides alone.
		{"corrupted, sha256", corrupt(2*pl + 100), good, "sha256"},
		{"short, sha256", data[:len(data)-1], good, "size"},
		// Without, the piece hashes do.
		{"corrupted first piece", corrupt(0), pieces, "piece 0"},
		{"corrupted middle piece", corrupt(2*pl + 100), pieces, "piece 2"},
		{"corrupted last byte", corrupt(len(data) - 1), pieces, "piece 3"},
		{"short", data[:len(data)-1], pieces, "size"},
		// The torrent says the last piece is unpadded, the hashes are padded.
		{"tail mismatch", data, func() expect { w := pieces; w.tail = true; return w }(), "piece 3"},
		// And the other way round.
		{"padded mismatch", data, func() expect { w := expectFor(t, data, true); w.tail = false; w.sha256 = nil; return w }(), "piece 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcDir, outDir := t.TempDir(), t.TempDir()
			src := filepath.Join(srcDir, "data")
			writeFile(t, src, tt.src)
			out := filepath.Join(outDir, "pkg.rpm")
			err := place(filepath.Dir(src), source{path: src}, out, tt.want)
			if err == nil {
				t.Fatal("place succeeded")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if names := dirNames(t, outDir); len(names) != 0 {
				t.Errorf("left behind: %q", names)
			}
			if got, _ := os.ReadFile(src); !bytes.Equal(got, tt.src) {
				t.Error("source modified")
			}
		})
	}

	// A failed place leaves an existing output alone.
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, src, corrupt(5))
	out := filepath.Join(dir, "out")
	writeFile(t, out, []byte("previous"))
	if err := place(filepath.Dir(src), source{path: src}, out, good); err == nil {
		t.Fatal("place of a corrupt file succeeded")
	}
	if got, _ := os.ReadFile(out); string(got) != "previous" {
		t.Errorf("existing output changed to %d bytes", len(got))
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"out", "src"}) {
		t.Errorf("directory holds %q", names)
	}
}

func TestPlaceErrors(t *testing.T) {
	data := testkit.RandBytes(100, 4)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, src, data)
	want := expectFor(t, data, true)

	if err := place(filepath.Dir(src), source{path: src}, filepath.Join(dir, "missing", "out"), want); err == nil {
		t.Error("place into a missing directory succeeded")
	}
	if err := place(dir, source{path: filepath.Join(dir, "nosrc")}, filepath.Join(dir, "out"), want); err == nil {
		t.Error("place of a missing source succeeded")
	}
	// An output that is a directory cannot be replaced.
	od := filepath.Join(dir, "outdir")
	if err := os.Mkdir(od, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := place(filepath.Dir(src), source{path: src}, od, want); err == nil {
		t.Error("place over a directory succeeded")
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"outdir", "src"}) {
		t.Errorf("directory holds %q", names)
	}
}

func TestPlaceUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write to any directory")
	}
	data := testkit.RandBytes(100, 5)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, src, data)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if err := place(filepath.Dir(src), source{path: src}, filepath.Join(dir, "out"), expectFor(t, data, true)); err == nil {
		t.Error("place into an unwritable directory succeeded")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("left behind: %q", names)
	}
}

// place copies across file systems too.
func TestPlaceCopies(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "pkgtorrent-test-")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	data := testkit.RandBytes(2*pl+9, 6)
	src := filepath.Join(shm, "src")
	writeFile(t, src, data)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "out")
	if err := place(filepath.Dir(src), source{path: src}, out, expectFor(t, data, false)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("copied output differs")
	}
	bad := expectFor(t, data, false)
	bad.sha256[0] ^= 1
	out2 := filepath.Join(outDir, "out2")
	if err := place(filepath.Dir(src), source{path: src}, out2, bad); err == nil {
		t.Error("copied place with a wrong sha256 succeeded")
	}
	if names := dirNames(t, outDir); !slices.Equal(names, []string{"out"}) {
		t.Errorf("output directory holds %q", names)
	}
}

func TestCopyVerifiedExclusive(t *testing.T) {
	dir := t.TempDir()
	data := []byte("new")
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, src, data)
	writeFile(t, dst, []byte("old"))
	if err := copyVerified(bytes.NewReader(data), dst, expectFor(t, data, true)); err == nil {
		t.Error("copyVerified over an existing file succeeded")
	}
	if got, _ := os.ReadFile(dst); string(got) != "old" {
		t.Errorf("existing file changed to %q", got)
	}
	dst2 := filepath.Join(dir, "dst2")
	if err := copyVerified(bytes.NewReader(data), dst2, expectFor(t, data, true)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst2); string(got) != "new" {
		t.Errorf("copy = %q", got)
	}
}

// check tells a short, a long and a changed file apart, whole pieces or
// not, padded or unpadded: a file short by zero bytes in its padded last
// piece hashes like the right one, and only the size tells.
func TestCheckSizes(t *testing.T) {
	for _, n := range []int{1, pl - 1, pl, pl + 1, 3*pl + 5} {
		data := testkit.RandBytes(int64(n), uint64(n))
		data[len(data)-1] = 0
		for _, tail := range []bool{false, true} {
			for _, withSum := range []bool{false, true} {
				want := expectFor(t, data, tail)
				changedMsg := "sha256"
				if !withSum {
					want.sha256 = nil
					changedMsg = "piece 0"
				}
				if err := check(bytes.NewReader(data), want); err != nil {
					t.Errorf("%d bytes, tail %v, sha256 %v: %v", n, tail, withSum, err)
				}
				if err := check(bytes.NewReader(data[:n-1]), want); err == nil || !strings.Contains(err.Error(), "size") {
					t.Errorf("%d bytes, tail %v, sha256 %v, one short: %v", n, tail, withSum, err)
				}
				if err := check(bytes.NewReader(append(slices.Clone(data), 0)), want); err == nil || !strings.Contains(err.Error(), "size") {
					t.Errorf("%d bytes, tail %v, sha256 %v, one long: %v", n, tail, withSum, err)
				}
				changed := slices.Clone(data)
				changed[0] ^= 1
				if err := check(bytes.NewReader(changed), want); err == nil || !strings.Contains(err.Error(), changedMsg) {
					t.Errorf("%d bytes, tail %v, sha256 %v, changed: %v", n, tail, withSum, err)
				}
			}
		}
	}
}

// With the caller's sha256 the torrent's piece hashes are not consulted:
// the right bytes are placed even when the torrent's hashes disagree.
func TestCheckSHA256Decides(t *testing.T) {
	data := testkit.RandBytes(3*pl+5, 9)
	want := expectFor(t, data, false)
	want.pieces = bytes.Repeat([]byte{1}, len(want.pieces))
	if err := check(bytes.NewReader(data), want); err != nil {
		t.Errorf("sha256 right, piece hashes wrong: %v", err)
	}
	want.sha256 = nil
	if err := check(bytes.NewReader(data), want); err == nil || !strings.Contains(err.Error(), "piece 0") {
		t.Errorf("no sha256, piece hashes wrong: %v", err)
	}
}

// A data file that is not the caller's is copied, never hard-linked (an
// agent running as another user could change a linked file after it was
// verified); a symlink or FIFO handed over as data is refused.
func TestPlaceForeignData(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own files as another user")
	}
	data := testkit.RandBytes(pl+3, 7)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, src, data)
	if err := os.Chown(src, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := place(filepath.Dir(src), source{path: src}, out, expectFor(t, data, false)); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(src)
	b, _ := os.Stat(out)
	if os.SameFile(a, b) {
		t.Error("a file of another user was hard-linked")
	}
	if st := b.Sys().(*syscall.Stat_t); st.Uid != 0 {
		t.Errorf("placed file belongs to uid %d", st.Uid)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(src, link)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{link, fifo} {
		if err := place(dir, source{path: bad}, filepath.Join(dir, "out2"), expectFor(t, data, false)); err == nil {
			t.Errorf("placed from %s", bad)
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"fifo", "link", "out", "src"}) {
		t.Errorf("directory holds %q", names)
	}
}

// The placed file is always a new inode, even from the caller's own data:
// the agent's store may rewrite its data file later (a crafted torrent
// once made it rewrite a file's last piece), and a placed file never
// changes after verification.
func TestPlaceNeverLinks(t *testing.T) {
	data := testkit.RandBytes(2*pl+3, 8)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, src, data)
	out := filepath.Join(dir, "out")
	if err := place(dir, source{path: src}, out, expectFor(t, data, false)); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(src)
	b, _ := os.Stat(out)
	if os.SameFile(a, b) || b.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Fatal("the placed file is linked to the agent's data file")
	}
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("rewritten"), int64(len(data))-9)
	f.Close()
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("the placed file changed when the agent's data file was rewritten")
	}
}

// The agent user owns the state directory and may swap any component of a
// data path for a symlink: place follows none below the state directory,
// and refuses data outside it.
func TestPlaceSymlinkComponent(t *testing.T) {
	data := testkit.RandBytes(pl+1, 9)
	state := t.TempDir()
	elsewhere := t.TempDir()
	writeFile(t, filepath.Join(elsewhere, "f"), data)
	if err := os.Mkdir(filepath.Join(state, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(state, "data", "sub")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(elsewhere, "f"), filepath.Join(state, "data", "flink"))
	out := t.TempDir()
	for _, src := range []string{
		filepath.Join(state, "data", "sub", "f"),
		filepath.Join(state, "data", "flink"),
		filepath.Join(elsewhere, "f"),
		filepath.Join(state, "data", "..", "..", filepath.Base(elsewhere), "f"),
	} {
		err := place(state, source{path: src}, filepath.Join(out, "o"), expectFor(t, data, false))
		if err == nil {
			t.Errorf("placed from %s", src)
		}
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Errorf("output directory holds %q", names)
	}
}

// A fake agent keeps swapping a component of the data path between a
// symlink to its own directory and one to elsewhere while root places
// (the race that once got root to hard-link files the agent user could
// rewrite): no placement follows either.
func TestPlaceRacingSymlinks(t *testing.T) {
	data := testkit.RandBytes(pl+5, 10)
	state := t.TempDir()
	real := filepath.Join(state, "real")
	os.Mkdir(real, 0o755)
	writeFile(t, filepath.Join(real, "f"), data)
	elsewhere := t.TempDir()
	writeFile(t, filepath.Join(elsewhere, "f"), data)
	sub := filepath.Join(state, "sub")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tmp := filepath.Join(state, "tmp")
			os.Remove(tmp)
			if i%2 == 0 {
				os.Symlink(elsewhere, tmp)
			} else {
				os.Symlink("real", tmp)
			}
			os.Rename(tmp, sub)
		}
	}()
	out := t.TempDir()
	placed := 0
	for i := range 200 {
		o := filepath.Join(out, strconv.Itoa(i))
		if err := place(state, source{path: filepath.Join(sub, "f")}, o, expectFor(t, data, false)); err != nil {
			continue
		}
		placed++
	}
	close(stop)
	<-done
	if placed != 0 {
		t.Errorf("%d placements followed a symlink in the state directory", placed)
	}
	if names := dirNames(t, out); len(names) != placed {
		t.Errorf("output directory holds %d files, %d placed", len(names), placed)
	}
}

// A pack holds many contents: place copies the file's bytes from its
// offset, whatever lies before and after, and fails when the data file
// ends before the file does.
func TestPlaceFromPack(t *testing.T) {
	data := testkit.RandBytes(3*pl+123, 8)
	want := expectFor(t, data, false)
	dir := t.TempDir()
	src := filepath.Join(dir, "pack")
	before, after := testkit.RandBytes(8192, 9), testkit.RandBytes(5000, 10)
	writeFile(t, src, slices.Concat(before, data, after))
	out := filepath.Join(dir, "out")
	if err := place(dir, source{src, int64(len(before))}, out, want); err != nil {
		t.Fatalf("place from offset %d: %v", len(before), err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Errorf("placed %d bytes, not the file's", len(got))
	}
	for _, tc := range []struct {
		off int64
		msg string
	}{
		{int64(len(before)) + 1, "sha256"},
		{int64(len(before) + len(data) + len(after) - 100), "size"},
		{-1, "offset"},
	} {
		out := filepath.Join(dir, "bad")
		err := place(dir, source{src, tc.off}, out, want)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("place from offset %d: %v, want an error naming %q", tc.off, err, tc.msg)
		}
		if _, err := os.Lstat(out); err == nil {
			t.Errorf("offset %d: output left behind", tc.off)
		}
	}
}

// An empty file is placed without reading the agent's data (it may have no
// data file for it).
func TestPlaceEmpty(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "empty")
	if err := place(dir, source{path: filepath.Join(dir, "none")}, out, expectFor(t, nil, true)); err != nil {
		t.Fatalf("place of an empty file: %v", err)
	}
	if fi, err := os.Lstat(out); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Errorf("placed: %v, %v", fi, err)
	}
}

// BenchmarkCheck: the check of a placed file's bytes, 400 files of 40 KiB
// (each padded to a 64 KiB piece), with the batch line's sha256 and
// without one.
func BenchmarkCheck(b *testing.B) {
	var files [][]byte
	var wants []expect
	for i := range 400 {
		data := testkit.RandBytes(40<<10, uint64(i))
		h, err := torrentfile.HashReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(data)
		files = append(files, data)
		wants = append(wants, expect{size: int64(len(data)), pieces: h.Pieces, sha256: sum[:]})
	}
	for _, withSum := range []bool{true, false} {
		name := "sha256"
		if !withSum {
			name = "pieces"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(files)) * 40 << 10)
			for b.Loop() {
				for i, data := range files {
					w := wants[i]
					if !withSum {
						w.sha256 = nil
					}
					if err := check(bytes.NewReader(data), w); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
