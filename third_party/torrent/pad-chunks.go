package torrent

// pkgtorrent patch: BEP 47 pad files (attr "p") stay off the wire between peers, as in
// libtorrent, when ClientConfig.StorageZeroesPadFiles is set. Chunks wholly inside pad files start,
// and stay, dirty: they are never requested, and a piece is hashed once its other chunks are
// written (the storage reads pad files as zeros). A chunk whose tail lies in a pad file is
// requested from peer connections without that tail. Webseed requests are unchanged (their
// responses are byte streams of whole chunks; an http.RoundTripper can answer pad files locally).
// Requests from peers for pad data are served from storage, like any other.

import (
	"strings"

	"github.com/cespare/xxhash"

	pp "github.com/anacrolix/torrent/peer_protocol"
	typedRoaring "github.com/anacrolix/torrent/typed-roaring"
)

type padChunks struct {
	// Chunks wholly inside pad files. A subset of Torrent.dirtyChunks at all times.
	whole typedRoaring.Bitmap[RequestIndex]
	// Chunks whose tail is padding: the length of their data, the wire length of a request.
	trimmed map[RequestIndex]pp.Integer
}

func fileIsPad(attr string) bool {
	return strings.Contains(attr, "p")
}

// Finds the pad chunks of the info's files and marks those wholly inside pad files dirty. Called
// from setInfo, once the files and pieces are known.
func (t *Torrent) initPadChunks() {
	t.padChunks = padChunks{}
	if !t.cl.config.StorageZeroesPadFiles || t.info.FilesArePieceAligned() || t.info.PieceLength <= 0 {
		// Pad files are not in the file list: pieces end with their files.
		return
	}
	pieceLength := t.info.PieceLength
	chunkSize := int64(t.chunkSize)
	for _, f := range *t.files {
		if f.length <= 0 || !fileIsPad(f.fi.Attr) {
			continue
		}
		begin, end := f.offset, f.offset+f.length
		for piece := begin / pieceLength; piece*pieceLength < end && int(piece) < t.numPieces(); piece++ {
			pieceBegin := piece * pieceLength
			pieceEnd := pieceBegin + int64(t.pieceLength(int(piece)))
			for ci := max(0, (begin-pieceBegin)/chunkSize); pieceBegin+ci*chunkSize < min(end, pieceEnd); ci++ {
				cb := pieceBegin + ci*chunkSize
				ce := min(cb+chunkSize, pieceEnd)
				ri := t.pieceRequestIndexBegin(int(piece)) + RequestIndex(ci)
				switch {
				case cb >= begin && ce <= end:
					t.padChunks.whole.Add(ri)
				case cb < begin && ce <= end:
					if t.padChunks.trimmed == nil {
						t.padChunks.trimmed = make(map[RequestIndex]pp.Integer)
					}
					l := pp.Integer(begin - cb)
					if prev, ok := t.padChunks.trimmed[ri]; !ok || l < prev {
						t.padChunks.trimmed[ri] = l
					}
				}
			}
		}
	}
	// A piece of nothing but padding would never be requested, written or hashed: leave its first
	// chunk to be requested.
	for piece := range t.numPieces() {
		begin := t.pieceRequestIndexBegin(piece)
		n := t.pieceNumChunks(piece)
		if n != 0 && t.padChunks.whole.RangeCardinality(begin, begin+n) == uint64(n) {
			t.padChunks.whole.Remove(begin)
		}
	}
	t.dirtyChunks.Or(&t.padChunks.whole.Bitmap)
}

func (t *Torrent) isPadChunk(ri RequestIndex) bool {
	return t.padChunks.whole.Contains(ri)
}

// The number of chunks wholly inside pad files in [begin, end).
func (t *Torrent) numPadChunks(begin, end RequestIndex) uint64 {
	if t.padChunks.whole.IsEmpty() {
		return 0
	}
	return t.padChunks.whole.RangeCardinality(begin, end)
}

// Marks the pad chunks in [begin, end) dirty again, after their range was pended.
func (t *Torrent) redirtyPadChunks(begin, end RequestIndex) {
	if t.padChunks.whole.IsEmpty() {
		return
	}
	it := t.padChunks.whole.Iterator()
	it.AdvanceIfNeeded(uint32(begin))
	for it.HasNext() {
		ri := RequestIndex(it.Next())
		if ri >= end {
			break
		}
		t.dirtyChunks.Add(ri)
	}
}

// The request sent to peer connections for a chunk: without its trailing padding.
func (t *Torrent) wireRequest(ri RequestIndex) Request {
	r := t.requestIndexToRequest(ri)
	if l, ok := t.padChunks.trimmed[ri]; ok {
		r.Length = l
	}
	return r
}

// Whether r is the request sent to peer connections for a chunk trimmed of its trailing padding.
func (t *Torrent) isTrimmedWireRequest(r Request) bool {
	if len(t.padChunks.trimmed) == 0 {
		return false
	}
	ri := t.requestIndexFromRequest(r)
	return r == t.wireRequest(ri) && r != t.requestIndexToRequest(ri)
}

// The padding zeros that follow n bytes received for r in storage: those of a trimmed chunk. Smart
// ban hashes are taken over the chunk as it is read back from storage.
func (t *Torrent) chunkPadding(r Request, n int) int {
	full := t.requestIndexToRequest(t.requestIndexFromRequest(r))
	return max(0, int(full.Length)-n)
}

var smartBanZeros [16 << 10]byte

// The smart ban hash of b followed by zeros zero bytes, without copying b.
func (t *Torrent) smartBanHash(b []byte, zeros int) uint64 {
	h := xxhash.New()
	h.Write(t.smartBanSalt[:])
	h.Write(b)
	for zeros > 0 {
		n := min(zeros, len(smartBanZeros))
		h.Write(smartBanZeros[:n])
		zeros -= n
	}
	return h.Sum64()
}
