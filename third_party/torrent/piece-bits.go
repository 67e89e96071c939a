package torrent

import (
	"math/bits"

	"github.com/RoaringBitmap/roaring/v2"
)

// pieceBits is a plain bitmap of piece indexes (pkgtorrent patch): one load
// per lookup where a roaring bitmap's array container searches. The HAVE
// paths ask per piece and connection whether this host told the peer of a
// piece (PeerConn.sentHaves) and whether the peer has it
// (PeerConn.peerPieceBits, kept beside the roaring bitmap the request
// planning iterates); in a burst that is every piece times every peer.
type pieceBits struct {
	words []uint64
	n     int // bits set
}

func (b *pieceBits) Contains(i pieceIndex) bool {
	w := i >> 6
	return i >= 0 && w < len(b.words) && b.words[w]&(1<<(uint(i)&63)) != 0
}

func (b *pieceBits) Add(i pieceIndex) {
	w := i >> 6
	if w >= len(b.words) {
		b.words = append(b.words, make([]uint64, w+1-len(b.words))...)
	}
	m := uint64(1) << (uint(i) & 63)
	if b.words[w]&m == 0 {
		b.words[w] |= m
		b.n++
	}
}

// AddRange sets the pieces [0, n).
func (b *pieceBits) AddRange(n pieceIndex) {
	for i := range n {
		b.Add(i)
	}
}

// RemoveFrom clears the pieces from n on.
func (b *pieceBits) RemoveFrom(n pieceIndex) {
	for w := max(n>>6, 0); w < len(b.words); w++ {
		keep := uint64(0)
		if w == n>>6 && n > 0 {
			keep = 1<<(uint(n)&63) - 1
		}
		b.n -= bits.OnesCount64(b.words[w] &^ keep)
		b.words[w] &= keep
	}
}

func (b *pieceBits) Clear() {
	clear(b.words)
	b.n = 0
}

func (b *pieceBits) IsEmpty() bool { return b.n == 0 }

// Each calls f with every piece set, in order; f must not change b.
func (b *pieceBits) Each(f func(pieceIndex)) {
	for w, word := range b.words {
		for word != 0 {
			f(w<<6 + bits.TrailingZeros64(word))
			word &= word - 1
		}
	}
}

// SetFrom makes b hold the pieces of r.
func (b *pieceBits) SetFrom(r *roaring.Bitmap) {
	b.Clear()
	r.Iterate(func(x uint32) bool {
		b.Add(pieceIndex(x))
		return true
	})
}
