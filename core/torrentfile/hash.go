package torrentfile

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
)

// Hashes are the piece hashes of one file, independent of any batch.
type Hashes struct {
	// Size is the file's length in bytes.
	Size int64
	// Pieces holds one SHA-1 per piece, the last piece padded with zeros to
	// PieceLength (as it is in every batch where the file is not last).
	Pieces []byte
	// Tail is the SHA-1 of the last piece without padding (used when the
	// file is last in a batch). Equal to the last piece hash when unpadded.
	Tail [20]byte
}

func (h Hashes) check() error {
	if h.Size < 0 || len(h.Pieces) != 20*NumPieces(h.Size) {
		return errors.New("piece hashes do not match the size")
	}
	return nil
}

// zeroPiece is read-only padding.
var zeroPiece [PieceLength]byte

// Padding returns n bytes of padding (zeros) to write after a piece's file
// bytes, n at most PieceLength. The bytes are shared: never write to them.
func Padding(n int) []byte { return zeroPiece[:n] }

// PieceHash is the hash of a file's piece holding data (at most
// PieceLength bytes): the data padded with zeros to PieceLength, as the
// piece lies in a batch, unless unpadded (the file's last piece when it is
// the last file of its batch).
func PieceHash(data []byte, unpadded bool) [20]byte {
	if unpadded || len(data) == PieceLength {
		return sha1.Sum(data)
	}
	var sum [20]byte
	d := sha1.New()
	d.Write(data)
	d.Write(zeroPiece[:PieceLength-len(data)])
	d.Sum(sum[:0])
	return sum
}

// HashReader reads exactly size bytes from r and returns their piece hashes.
// It allocates a buffer of at most one piece, no larger than the file.
func HashReader(r io.Reader, size int64) (Hashes, error) {
	h := Hashes{Size: size, Pieces: make([]byte, 0, 20*NumPieces(size))}
	buf := make([]byte, max(0, min(size, PieceLength)))
	for left := size; left > 0; {
		n := min(left, PieceLength)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return Hashes{}, fmt.Errorf("reading piece at offset %d: %w", size-left, err)
		}
		left -= n
		sum := PieceHash(buf[:n], false)
		if n < PieceLength {
			h.Tail = PieceHash(buf[:n], true)
		}
		h.Pieces = append(h.Pieces, sum[:]...)
		if n == PieceLength && left == 0 {
			h.Tail = sum
		}
	}
	return h, nil
}
