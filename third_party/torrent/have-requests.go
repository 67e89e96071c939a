package torrent

// pkgtorrent patch: ClientConfig.RequestOnHave. On every HAVE of a piece the client wants, the
// engine replanned the connection's requests: a scan of every piece in request order (and of
// whether the peer has it). In a burst each host hears a HAVE from every peer for every piece, and
// these replans were the largest part of request planning (15% of the agents' CPU with 10 hosts).
// When set, a HAVE of a piece whose chunks this connection can take now (already interested, not
// choked, room under its request limit, the piece requestable) requests them directly; chunks
// another peer is fetching are left to it (the next full replan may still steal them). Anything
// else falls back to the full replan.

import (
	typedRoaring "github.com/anacrolix/torrent/typed-roaring"
)

// Requests the wanted piece pi, just announced by the peer, without replanning. It returns false
// when a full replan is needed instead. Where it does nothing, a replan would have requested
// nothing either: it adds requests only under the same limit, and a HAVE changes no other piece.
func (cn *PeerConn) requestPieceOnHave(pi pieceIndex) bool {
	t := cn.t
	if !t.cl.config.RequestOnHave {
		return false
	}
	if cn.needRequestUpdate != "" {
		// A replan is due anyway and sees this piece.
		return true
	}
	if !cn.requestState.Interested || cn.closed.IsSet() || !t.peerIsActive(cn.peerPtr()) {
		// The replan sets interest.
		return false
	}
	if cn.peerChoking && !cn.peerAllowedFast.Contains(pi) {
		// Nothing can be requested until the peer unchokes, which replans.
		return true
	}
	if t.piece(pi).ignoreForRequests() {
		return true
	}
	var (
		it   typedRoaring.Iterator[RequestIndex]
		free [16]RequestIndex
		n    int
		ok   = true
	)
	t.iterUndirtiedRequestIndexesInPiece(&it, pi, func(r RequestIndex) {
		switch {
		case cn.requestState.Cancelled.Contains(r) || cn.requestState.Requests.Contains(r):
			ok = false
		case t.requestingPeer(r) != nil:
			// Another peer fetches it.
		case n == len(free):
			ok = false
		default:
			free[n] = r
			n++
		}
	})
	if !ok {
		return false
	}
	pending := maxRequests(cn.requestState.Requests.GetCardinality() + cn.requestState.Cancelled.GetCardinality())
	if pending+maxRequests(n) > cn.nominalMaxRequests() {
		// No room: the replan would stop at the limit too. Once the requests are answered, the
		// connection runs out of them, which replans.
		return n == 0 || pending >= cn.nominalMaxRequests()
	}
	for _, r := range free[:n] {
		if _, err := cn.request(r); err != nil {
			return false
		}
	}
	return true
}
