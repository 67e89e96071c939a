package torrentfile

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

func TestPadLength(t *testing.T) {
	tests := []struct{ size, want int64 }{
		{0, 0},
		{1, PieceLength - 1},
		{PieceLength - 1, 1},
		{PieceLength, 0},
		{PieceLength + 1, PieceLength - 1},
		{3*PieceLength + 100, PieceLength - 100},
	}
	for _, tt := range tests {
		if got := PadLength(tt.size); got != tt.want {
			t.Errorf("PadLength(%d) = %d, want %d", tt.size, got, tt.want)
		}
		if (tt.size+PadLength(tt.size))%PieceLength != 0 {
			t.Errorf("size %d + pad %d is not a piece multiple", tt.size, PadLength(tt.size))
		}
	}
}

func TestNumPieces(t *testing.T) {
	tests := []struct {
		size int64
		want int
	}{{0, 0}, {1, 1}, {PieceLength - 1, 1}, {PieceLength, 1}, {PieceLength + 1, 2}, {5 * PieceLength, 5}}
	for _, tt := range tests {
		if got := NumPieces(tt.size); got != tt.want {
			t.Errorf("NumPieces(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}

func TestParsePadPath(t *testing.T) {
	good := []struct {
		p string
		n int64
	}{{".pad/1", 1}, {fmt.Sprintf(".pad/%d", PieceLength-1), PieceLength - 1}, {".pad/100", 100}}
	for _, tt := range good {
		if n, ok := ParsePadPath(tt.p); !ok || n != tt.n {
			t.Errorf("ParsePadPath(%q) = %d, %v; want %d, true", tt.p, n, ok, tt.n)
		}
		if got := strings.Join(PadPath(tt.n), "/"); got != tt.p {
			t.Errorf("PadPath(%d) = %q, want %q", tt.n, got, tt.p)
		}
	}
	for _, p := range []string{
		".pad/0", ".pad/01", fmt.Sprintf(".pad/%d", PieceLength), ".pad/999999", "x/.pad/3", ".pad/-1", ".pad/+1",
		".pad/", ".pad", "pad/3", ".pad/3/x", ".pad/3 ", ".pad/ 3", ".pad/0x10", "/.pad/3", ".PAD/3",
	} {
		if n, ok := ParsePadPath(p); ok {
			t.Errorf("ParsePadPath(%q) = %d, true; want false", p, n)
		}
	}
}

// refHashes computes piece hashes independently of HashReader.
func refHashes(data []byte) (pieces []byte, tail [20]byte) {
	for off := 0; off < len(data); off += PieceLength {
		end := min(off+PieceLength, len(data))
		p := make([]byte, PieceLength)
		copy(p, data[off:end])
		sum := sha1.Sum(p)
		pieces = append(pieces, sum[:]...)
		tail = sha1.Sum(data[off:end])
	}
	return pieces, tail
}

func TestHashReader(t *testing.T) {
	for i, size := range []int64{0, 1, 100, PieceLength - 1, PieceLength, PieceLength + 1, 2 * PieceLength, 3*PieceLength + 17} {
		data := testkit.RandBytes(size, uint64(i))
		h, err := HashReader(bytes.NewReader(data), size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		pieces, tail := refHashes(data)
		if h.Size != size {
			t.Errorf("size %d: Size = %d", size, h.Size)
		}
		if len(h.Pieces) != 20*NumPieces(size) || !bytes.Equal(h.Pieces, pieces) {
			t.Errorf("size %d: pieces differ from an independent SHA-1 of zero-padded pieces", size)
		}
		if h.Tail != tail {
			t.Errorf("size %d: Tail = %x, want %x", size, h.Tail, tail)
		}
		if size%PieceLength == 0 && size > 0 && !bytes.Equal(h.Tail[:], h.Pieces[len(h.Pieces)-20:]) {
			t.Errorf("size %d: Tail differs from the last piece hash of an unpadded file", size)
		}
		if size%PieceLength != 0 && bytes.Equal(h.Tail[:], h.Pieces[len(h.Pieces)-20:]) {
			t.Errorf("size %d: Tail equals the padded last piece hash", size)
		}
		// Reads exactly size bytes, not more.
		r := bytes.NewReader(append(slices.Clone(data), "trailing"...))
		if _, err := HashReader(r, size); err != nil || r.Len() != len("trailing") {
			t.Errorf("size %d: HashReader left %d bytes unread, err %v", size, r.Len(), err)
		}
	}
	// A short reader is an error.
	if _, err := HashReader(bytes.NewReader(make([]byte, 10)), 11); err == nil {
		t.Error("HashReader of a short reader succeeded")
	}
	if _, err := HashReader(bytes.NewReader(make([]byte, PieceLength)), PieceLength+1); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Errorf("HashReader short by a piece: %v, want EOF", err)
	}
}

type testFile struct {
	path string
	data []byte
}

func makeFiles(t testing.TB, sizes []int64, seed uint64) ([]testFile, []File) {
	t.Helper()
	var tfs []testFile
	var fs []File
	for i, size := range sizes {
		data := testkit.RandBytes(size, seed+uint64(i))
		h, err := HashReader(bytes.NewReader(data), size)
		if err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("dir%d/file %d.rpm", i%2, i)
		tfs = append(tfs, testFile{p, data})
		fs = append(fs, File{Path: p, Hashes: h})
	}
	return tfs, fs
}

var testOpts = Options{
	Announce: []string{"http://tracker.example/announce", "http://t2.example/announce"},
	WebSeeds: []string{"http://ws.example/seed/"},
	Mirrors:  []string{"http://mirror.example/fedora/", "https://m2.example/f/"},
}

// checkTorrent verifies a built torrent with anacrolix's own piece layout.
func checkTorrent(t testing.TB, tb []byte, tfs []testFile, opts Options) {
	t.Helper()
	mi, err := metainfo.Load(bytes.NewReader(tb))
	if err != nil {
		t.Fatalf("metainfo.Load: %v", err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatalf("UnmarshalInfo: %v", err)
	}
	if info.PieceLength != PieceLength {
		t.Fatalf("piece length %d", info.PieceLength)
	}

	// File list: each file, then a pad file unless it is last or aligned.
	var stream []byte
	fi := info.UpvertedFiles()
	j := 0
	for i, f := range tfs {
		if j >= len(fi) {
			t.Fatalf("torrent has %d files, ran out at %d", len(fi), i)
		}
		got := fi[j]
		j++
		if strings.Join(got.Path, "/") != f.path || got.Length != int64(len(f.data)) || got.Attr != "" {
			t.Errorf("file %d = %q len %d attr %q, want %q len %d", i, got.Path, got.Length, got.Attr, f.path, len(f.data))
		}
		if got.TorrentOffset%PieceLength != 0 {
			t.Errorf("file %q starts at %d, not a piece boundary", f.path, got.TorrentOffset)
		}
		if int64(len(stream)) != got.TorrentOffset {
			t.Errorf("file %q at offset %d, stream has %d bytes", f.path, got.TorrentOffset, len(stream))
		}
		stream = append(stream, f.data...)
		pad := PadLength(int64(len(f.data)))
		if i == len(tfs)-1 || pad == 0 {
			continue
		}
		if j >= len(fi) {
			t.Fatalf("no pad file after %q", f.path)
		}
		p := fi[j]
		j++
		if p.Attr != "p" || !slices.Equal(p.Path, []string{".pad", fmt.Sprint(pad)}) || p.Length != pad {
			t.Errorf("after %q: %q len %d attr %q, want pad of %d", f.path, p.Path, p.Length, p.Attr, pad)
		}
		if n, ok := ParsePadPath(strings.Join(p.Path, "/")); !ok || n != pad {
			t.Errorf("pad path %q does not parse as %d", p.Path, pad)
		}
		stream = append(stream, make([]byte, pad)...)
	}
	if j != len(fi) {
		t.Errorf("torrent has %d extra files: %v", len(fi)-j, fi[j:])
	}
	if info.TotalLength() != int64(len(stream)) {
		t.Errorf("total length %d, stream %d", info.TotalLength(), len(stream))
	}

	// Pieces: the concatenated stream, hashed with anacrolix's piece lengths.
	wantN := (len(stream) + PieceLength - 1) / PieceLength
	if info.NumPieces() != wantN || len(info.Pieces) != 20*wantN {
		t.Fatalf("%d pieces (%d hash bytes), want %d", info.NumPieces(), len(info.Pieces), wantN)
	}
	for i := 0; i < wantN; i++ {
		p := info.Piece(i)
		off, n := p.Offset(), p.Length()
		if off+n > int64(len(stream)) {
			t.Fatalf("piece %d [%d,+%d) beyond stream of %d", i, off, n, len(stream))
		}
		sum := sha1.Sum(stream[off : off+n])
		if h := p.V1Hash(); !h.Ok || !bytes.Equal(h.Value[:], sum[:]) {
			t.Errorf("piece %d: hash %x, want %x", i, h.Value, sum)
		}
	}
	if gen, err := metainfo.GeneratePieces(bytes.NewReader(stream), PieceLength, nil); err != nil || !bytes.Equal(gen, info.Pieces) {
		t.Errorf("anacrolix GeneratePieces over the stream differs (%v)", err)
	}

	// Outside the info.
	wantAnnounce := ""
	if len(opts.Announce) > 0 {
		wantAnnounce = opts.Announce[0]
	}
	if mi.Announce != wantAnnounce {
		t.Errorf("announce %q, want %q", mi.Announce, wantAnnounce)
	}
	if len(opts.Announce) > 1 {
		var flat []string
		for _, tier := range mi.AnnounceList {
			flat = append(flat, tier...)
		}
		if !slices.Equal(flat, opts.Announce) {
			t.Errorf("announce-list %q, want %q", mi.AnnounceList, opts.Announce)
		}
	} else if len(mi.AnnounceList) != 0 {
		t.Errorf("announce-list %q for %d announce URLs", mi.AnnounceList, len(opts.Announce))
	}
	if !slices.Equal([]string(mi.UrlList), opts.WebSeeds) {
		t.Errorf("url-list %q, want %q", mi.UrlList, opts.WebSeeds)
	}
	if mi.CreationDate != 0 {
		t.Errorf("creation date %d", mi.CreationDate)
	}
	var raw map[string]bencode.Bytes
	if err := bencode.Unmarshal(tb, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"creation date", "created by", "comment"} {
		if _, ok := raw[k]; ok {
			t.Errorf("torrent has a %q key", k)
		}
	}
	if _, ok := raw[MirrorsKey]; ok != (len(opts.Mirrors) > 0) {
		t.Errorf("%s present %v with %d mirrors", MirrorsKey, ok, len(opts.Mirrors))
	}

	// And our own Parse agrees.
	_, pinfo, mirrors, err := Parse(tb)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !slices.Equal(mirrors, opts.Mirrors) {
		t.Errorf("Parse mirrors %q, want %q", mirrors, opts.Mirrors)
	}
	if !bytes.Equal(pinfo.Pieces, info.Pieces) || len(pinfo.Files) != len(info.Files) || pinfo.Name != info.Name {
		t.Errorf("Parse info differs from metainfo.Load's")
	}
}

func TestBuild(t *testing.T) {
	const pl = PieceLength
	cases := []struct {
		name  string
		sizes []int64
		opts  Options
	}{
		{"one", []int64{100}, testOpts},
		{"one aligned", []int64{2 * pl}, testOpts},
		{"odd sizes", []int64{1, pl - 1, pl + 1, 3*pl + 5, 7}, testOpts},
		{"aligned middle", []int64{pl, 2 * pl, 10}, testOpts},
		{"last aligned", []int64{5, pl}, testOpts},
		{"empty file in middle", []int64{10, 0, 20}, testOpts},
		{"no options", []int64{10, 20}, Options{}},
		{"one announce", []int64{10, 20}, Options{Announce: []string{"http://t.example/announce"}}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tfs, fs := makeFiles(t, c.sizes, uint64(100*i))
			name := Name(strings.Repeat("ab", 32))
			tb, ih, err := Build(name, fs, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if mi, _, _, err := Parse(tb); err != nil || mi.HashInfoBytes() != ih {
				t.Errorf("Build's info hash %s is not the torrent's (%v)", ih, err)
			}
			tb2, _, err := Build(name, slices.Clone(fs), c.opts)
			if err != nil || !bytes.Equal(tb, tb2) {
				t.Errorf("Build is not deterministic (%v)", err)
			}
			checkTorrent(t, tb, tfs, c.opts)
		})
	}
}

func TestBuildInfoHashDependsOnContent(t *testing.T) {
	_, fs := makeFiles(t, []int64{100, 200}, 1)
	a, _, err := Build("n", fs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, fs2 := makeFiles(t, []int64{100, 200}, 2)
	b, _, err := Build("n", fs2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ma, _ := metainfo.Load(bytes.NewReader(a))
	mb, _ := metainfo.Load(bytes.NewReader(b))
	if ma.HashInfoBytes() == mb.HashInfoBytes() {
		t.Error("different contents give the same info hash")
	}
	// Options are outside the info: same info hash.
	c, _, _ := Build("n", fs, testOpts)
	mc, _ := metainfo.Load(bytes.NewReader(c))
	if ma.HashInfoBytes() != mc.HashInfoBytes() {
		t.Error("options changed the info hash")
	}
}

func TestInfoErrors(t *testing.T) {
	if _, err := Info("n", nil); err == nil {
		t.Error("Info with no files succeeded")
	}
	_, fs := makeFiles(t, []int64{PieceLength + 1}, 3)
	bad := fs[0]
	bad.Hashes.Pieces = bad.Hashes.Pieces[:20]
	if _, err := Info("n", []File{bad}); err == nil || !strings.Contains(err.Error(), bad.Path) {
		t.Errorf("Info with too few hashes: %v", err)
	}
	bad.Hashes.Size = -1
	if _, err := Info("n", []File{bad}); err == nil {
		t.Error("Info with a negative size succeeded")
	}
}

func TestParseRejects(t *testing.T) {
	if _, _, _, err := Parse([]byte("not bencode")); err == nil {
		t.Error("Parse of garbage succeeded")
	}
	// A single-file torrent with another piece length.
	info := metainfo.Info{Name: "x", PieceLength: 1 << 18, Length: 3, Pieces: make([]byte, 20)}
	ib, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := bencode.Marshal(metainfo.MetaInfo{InfoBytes: ib})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Parse(tb); err == nil {
		t.Error("Parse of a foreign torrent succeeded")
	}
}

func FuzzBuild(f *testing.F) {
	f.Add(uint16(1), uint16(0), uint16(100), uint8(3))
	f.Add(uint16(PieceLength/4), uint16(PieceLength/4-1), uint16(0), uint8(2))
	f.Add(uint16(0), uint16(0), uint16(0), uint8(1))
	f.Fuzz(func(t *testing.T, a, b, c uint16, n uint8) {
		// Sizes up to 4 pieces, 1 to 3 files.
		sizes := []int64{int64(a) * 4, int64(b) * 4, int64(c) * 4}[:int(n)%3+1]
		tfs, fs := makeFiles(t, sizes, uint64(a)^uint64(b)<<16)
		tb, _, err := Build("fuzz", fs, testOpts)
		if err != nil {
			t.Fatal(err)
		}
		if total := sizes[len(sizes)-1]; total == 0 && len(sizes) == 1 {
			// A single empty file: no pieces at all.
			return
		}
		checkTorrent(t, tb, tfs, testOpts)
	})
}

// FuzzParse feeds arbitrary bytes (a service answering garbage) to Parse:
// it never panics, and what it accepts is a multi-file torrent with
// pkgtorrent's piece length.
func FuzzParse(f *testing.F) {
	_, fs := makeFiles(f, []int64{1, PieceLength + 1}, 9)
	tb, _, err := Build("seed", fs, testOpts)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tb)
	f.Add([]byte("d4:infod12:piece lengthi16384e6:pieces0:ee"))
	f.Add([]byte("<html>not a torrent</html>"))
	f.Add([]byte("d8:announce"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, info, _, err := Parse(data)
		if err != nil {
			return
		}
		if info.PieceLength != PieceLength || !info.IsDir() {
			t.Fatalf("accepted piece length %d, multi-file %v", info.PieceLength, info.IsDir())
		}
	})
}
