package agent

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
