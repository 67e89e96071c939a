package torrentfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
)

// Span is one file of a batch torrent (not a padding file) and where its
// pieces are.
type Span struct {
	// Path is the file's slash-separated path in the batch.
	Path string
	// Length is the file's size in bytes.
	Length int64
	// FirstPiece is the index of the file's first piece.
	FirstPiece int
	// Hashes are the file's piece hashes, 20 bytes each.
	Hashes []byte
	// Unpadded tells that the file is last in its torrent: its last piece
	// is hashed as it is, not padded with zeros.
	Unpadded bool
}

// IsPad reports whether f is a BEP 47 padding file.
func IsPad(f metainfo.FileInfo) bool { return strings.Contains(f.Attr, "p") }

// Layout returns the files of a batch torrent's info (padding files left
// out) in their order, each with its pieces. Every file must start on a
// piece boundary and the info must hold every file's piece hashes.
func Layout(info *metainfo.Info) ([]Span, error) {
	if info.PieceLength != PieceLength {
		return nil, fmt.Errorf("piece length %d is not pkgtorrent's %d", info.PieceLength, PieceLength)
	}
	files := info.UpvertedFiles()
	var spans []Span
	var off int64
	for i, f := range files {
		if IsPad(f) {
			off += f.Length
			continue
		}
		p := strings.Join(f.Path, "/")
		if off%PieceLength != 0 {
			return nil, fmt.Errorf("file %q does not start on a piece boundary", p)
		}
		first := int(off / PieceLength)
		n := NumPieces(f.Length)
		if (first+n)*20 > len(info.Pieces) {
			return nil, errors.New("torrent has fewer piece hashes than its files need")
		}
		spans = append(spans, Span{
			Path:       p,
			Length:     f.Length,
			FirstPiece: first,
			Hashes:     info.Pieces[first*20 : (first+n)*20],
			Unpadded:   i == len(files)-1,
		})
		off += f.Length
	}
	return spans, nil
}

// Zeros reads as an endless run of zero bytes: the content of padding.
type Zeros struct{}

// Read fills b with zeros.
func (Zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// ReadAt fills b with zeros, wherever off is.
func (Zeros) ReadAt(b []byte, off int64) (int, error) {
	clear(b)
	return len(b), nil
}
