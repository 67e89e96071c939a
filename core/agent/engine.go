package agent

import (
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// Engine settings pkgtorrent needs different from anacrolix/torrent's
// defaults (64 MiB webseed slices, 25 requests per webseed host), set as
// ClientConfig fields (an engine patch: third_party/torrent/PKGTORRENT.md).
//
// Webseed requests are contiguous ranges that run to the end of a slice. In
// a burst, hosts that pull long ranges from the mirror at once pull pieces
// the others are about to hand them: with the defaults the origin sent
// markedly more of a batch in the three-host test on a capped origin
// (figures: docs/bench/README.md).
const (
	webseedRequestChunkSize = 256 << 10
	webseedHostRequests     = 2
)

// Between agents a request asks for a whole piece: the engine's costs are
// per request and per chunk (planning, messages, bookkeeping), and
// torrentfile.PieceLength is small enough that a piece is one request.
// Stock clients, which serve at most 16 KiB per request (transmission
// ignores larger ones), are asked in 16 KiB parts (the engine's
// WholeChunkPeerIDPrefix); they fetch from agents as usual (requests of
// any length up to a piece are served).
const peerChunkSize = torrentfile.PieceLength

// A request a peer has not had a second to answer is not handed to another
// peer (stealing): with whole-piece requests queued behind an upload limit
// a steal that crosses the answer on the wire wastes a piece.
const stealRequestGrace = time.Second

// HAVEs wait this long for others before they are written to an idle
// connection: in a burst every host tells each of its peers of every piece,
// and written one by one they cost each side a system call and wakeups.
// Peers learn of a piece that much later; the piece's requests wait a
// steal grace anyway.
const haveLinger = 200 * time.Millisecond
