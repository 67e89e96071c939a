package torrent

// pkgtorrent patch: chunks larger than 16 KiB, with peers that refuse larger requests. The engine's
// costs are per chunk (request planning, messages, bookkeeping, smart ban records), so a client can
// set a chunk size of a whole piece; but stock clients refuse requests of more than 16 KiB
// (transmission ignores them, libtorrent counts them as invalid). When
// ClientConfig.WholeChunkPeerIDPrefix is set, a peer whose ID starts with it is sent whole-chunk
// requests; any other is sent a chunk's request as consecutive requests of at most 16 KiB (and as
// many cancels), and its answers are put together in a chunk buffer until the chunk is whole, then
// received as one Piece message of the chunk. A reject of any part rejects the chunk once.

import (
	"bytes"

	pp "github.com/anacrolix/torrent/peer_protocol"
)

// The largest request sent to peers that are not known to take whole chunks.
const maxSubRequestLength = defaultChunkSize

// The parts of a chunk requested from a peer that takes at most maxSubRequestLength per request.
type splitChunk struct {
	// The chunk's wire request.
	req Request
	// The parts received, by index.
	got []bool
	n   int
	// The chunk's data so far: a chunk pool buffer.
	bufPtr *[]byte
	// A part was rejected: the chunk was rejected, later rejects of its parts are not.
	rejected bool
}

// Whether requests to this peer are split into parts of at most maxSubRequestLength.
func (c *PeerConn) splitsRequests() bool {
	prefix := c.t.cl.config.WholeChunkPeerIDPrefix
	return prefix != "" && c.t.chunkSize > maxSubRequestLength && !bytes.HasPrefix(c.PeerID[:], []byte(prefix))
}

// Writes the messages of type (Request or Cancel) for the wire request r: one, or one per part.
func (c *PeerConn) writeRequestMessages(typ pp.MessageType, r Request) bool {
	if !c.splitsRequests() {
		return c.write(r.ToMsg(typ))
	}
	more := true
	for begin := r.Begin; begin < r.Begin+r.Length; begin += maxSubRequestLength {
		part := newRequest(r.Index, begin, min(maxSubRequestLength, r.Begin+r.Length-begin))
		more = c.write(part.ToMsg(typ))
	}
	return more
}

// Notes a new request of ri to a peer that splits requests: the parts are yet to come.
func (c *PeerConn) startSplitChunk(ri RequestIndex, r Request) {
	if !c.splitsRequests() {
		return
	}
	if sc, ok := c.splitChunks[ri]; ok {
		// Parts of an earlier request of the same chunk are the same bytes.
		sc.rejected = false
		return
	}
	if c.splitChunks == nil {
		c.splitChunks = make(map[RequestIndex]*splitChunk)
	}
	c.splitChunks[ri] = &splitChunk{req: r, got: make([]bool, (r.Length+maxSubRequestLength-1)/maxSubRequestLength)}
}

// The chunk and part index of a part of a split request, if r is one.
func (c *PeerConn) splitPart(r Request) (RequestIndex, *splitChunk, int, bool) {
	if !c.splitsRequests() || int(r.Index) >= c.t.numPieces() || r.Begin >= c.t.pieceLength(pieceIndex(r.Index)) {
		return 0, nil, 0, false
	}
	ri := c.t.requestIndexFromRequest(r)
	sc, ok := c.splitChunks[ri]
	if !ok {
		return ri, nil, 0, false
	}
	off := r.Begin - sc.req.Begin
	if off < 0 || off%maxSubRequestLength != 0 || off >= sc.req.Length ||
		r.Length != min(maxSubRequestLength, sc.req.Length-off) {
		return ri, nil, 0, false
	}
	return ri, sc, int(off / maxSubRequestLength), true
}

// Takes a Piece message from a peer that splits requests. It returns the Piece message of the
// whole chunk once its last part came (its buffer from the chunk pool), and ok false for a part
// that leaves the chunk incomplete, or one of a chunk no longer expected (counted as wasted). A
// message that is not a part of a split request is returned as it is.
func (c *PeerConn) receivePart(msg *pp.Message) (whole pp.Message, ok bool) {
	r := newRequestFromMessage(msg)
	ri, sc, i, isPart := c.splitPart(r)
	if !isPart {
		if sc == nil && c.splitsRequests() && r.Length < c.t.chunkSize && c.t.requestIndexToRequest(ri) != r && !c.t.isTrimmedWireRequest(r) {
			// A part of a chunk whose parts were all received or rejected: as upstream does with
			// chunks that are not expected.
			c.modifyRelevantConnStats(add(1, func(cs *ConnStats) *Count { return &cs.ChunksReadWasted }))
			return whole, false
		}
		return *msg, true
	}
	if c.validReceiveChunks[ri] == 0 || sc.rejected {
		c.modifyRelevantConnStats(add(1, func(cs *ConnStats) *Count { return &cs.ChunksReadWasted }))
		return whole, false
	}
	if !sc.got[i] {
		if sc.bufPtr == nil {
			sc.bufPtr = c.t.chunkPool.Get()
		}
		copy((*sc.bufPtr)[r.Begin-sc.req.Begin:], msg.Piece)
		sc.got[i] = true
		sc.n++
	}
	if sc.n < len(sc.got) {
		return whole, false
	}
	delete(c.splitChunks, ri)
	whole = pp.Message{
		Type:     pp.Piece,
		Index:    sc.req.Index,
		Begin:    sc.req.Begin,
		Piece:    (*sc.bufPtr)[:sc.req.Length],
		PiecePtr: sc.bufPtr,
	}
	return whole, true
}

// Takes a Reject from a peer that splits requests: the chunk's first rejected part rejects the
// chunk, later ones are dropped (handled is true for both). handled is false for a message that is
// not a part of a split request.
func (c *PeerConn) rejectPart(r Request) (ri RequestIndex, first, handled bool) {
	ri, sc, _, isPart := c.splitPart(r)
	if !isPart {
		return ri, false, false
	}
	if sc.rejected {
		return ri, false, true
	}
	sc.rejected = true
	c.dropSplitChunkData(sc)
	return ri, true, true
}

// Forgets the parts received of a chunk (its buffer goes back to the pool).
func (c *PeerConn) dropSplitChunkData(sc *splitChunk) {
	if sc.bufPtr != nil {
		c.t.chunkPool.Put(sc.bufPtr)
		sc.bufPtr = nil
	}
	clear(sc.got)
	sc.n = 0
}

// Forgets every split chunk, when the connection closes.
func (c *PeerConn) dropSplitChunks() {
	for _, sc := range c.splitChunks {
		c.dropSplitChunkData(sc)
	}
	c.splitChunks = nil
}
