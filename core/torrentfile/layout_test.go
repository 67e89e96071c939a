package torrentfile

import (
	"bytes"
	"slices"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// Layout finds every file of a batch built by Info at its first piece, with
// its own hashes, and the last one unpadded; a file off a piece boundary or
// missing hashes is refused.
func TestLayout(t *testing.T) {
	sizes := []int64{1, PieceLength, 3*PieceLength + 5, 700}
	var files []File
	for i, n := range sizes {
		h, err := HashReader(bytes.NewReader(testkit.RandBytes(n, uint64(i))), n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Path: "d/f" + string(rune('a'+i)), Hashes: h})
	}
	info, err := Info("batch", files)
	if err != nil {
		t.Fatal(err)
	}
	spans, err := Layout(info)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != len(files) {
		t.Fatalf("%d spans for %d files", len(spans), len(files))
	}
	first := 0
	for i, sp := range spans {
		f := files[i]
		want := f.Hashes.Pieces
		if i == len(files)-1 && PadLength(f.Hashes.Size) != 0 {
			want = append(slices.Clone(want[:len(want)-20]), f.Hashes.Tail[:]...)
		}
		if sp.Path != f.Path || sp.Length != f.Hashes.Size || sp.FirstPiece != first || !bytes.Equal(sp.Hashes, want) || sp.Unpadded != (i == len(files)-1) {
			t.Errorf("span %d = %+v", i, sp)
		}
		first += NumPieces(f.Hashes.Size)
	}
	bad := *info
	bad.Files = slices.Clone(info.Files)
	bad.Files[1] = metainfo.FileInfo{Length: 3, Path: bad.Files[1].Path, ExtendedFileAttrs: metainfo.ExtendedFileAttrs{Attr: "p"}}
	if _, err := Layout(&bad); err == nil {
		t.Error("a file off a piece boundary was accepted")
	}
	short := *info
	short.Pieces = info.Pieces[:len(info.Pieces)-20]
	if _, err := Layout(&short); err == nil {
		t.Error("missing piece hashes were accepted")
	}
}
