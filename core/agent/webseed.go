package agent

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/core/store"
	"github.com/pkgtorrent/pkgtorrent/core/tracker"
)

// announceCompleted tells the trackers that this host seeds the torrent,
// which it now has all of. The engine announces on its own schedule, which
// may come after a small batch has long been fetched from the webseed; until
// then a tracker would report the torrent with no seeder, and newcomers
// would pull it from the mirror.
func (a *Agent) announceCompleted(e *entry) {
	a.announces.RLock()
	defer a.announces.RUnlock()
	if a.left {
		return
	}
	id, port := a.cl.PeerID(), a.cl.LocalPort()
	for _, tr := range e.trackers {
		if err := tracker.AnnounceEvent(a.web, tr, e.t.InfoHash(), id, port, "completed"); err != nil {
			a.log.Debug("completed announce failed", "tracker", tr, "err", err)
		}
	}
}

// webseedPolicy decides when the webseeds join the torrent, and what they
// fetch: they join at once when the tracker knows no seeder for it (swarm
// counts seeders and agents of related batches, not leechers), else when
// peers have delivered nothing for PeerGrace. (A host that just completed
// is a leecher to the tracker until its "completed" announce, which the
// agent sends at once; until the engine has the peers' bitfields the
// webseeds may take pieces they have.) Once in, the webseeds fetch only the pieces no
// connected peer has, unless peers that have pieces we want deliver nothing
// for leaveGrace times PeerGrace: in a burst the mirror sends each piece
// about once and the hosts trade the rest, and peers that hold pieces but do
// not send them hold up a fetch for that long at most. When the torrent is
// complete, it tells the trackers (announceCompleted).
func (a *Agent) webseedPolicy(e *entry, swarm int) {
	if e.t.Complete().Bool() {
		a.announceCompleted(e)
		return
	}
	e.t.SetWebseedsLeaveOnlyRequestedPeerPieces(a.cfg.WebseedIdlePieces)
	e.t.SetWebseedsLeavePeerPieces(true)
	rule := newWebseedRule(time.Now(), a.cfg.PeerGrace, swarm)
	var catch *catchUp
	if a.cfg.WebseedCatchUp && !a.cfg.WebseedIdlePieces {
		st := e.t.ConnStats()
		catch = newCatchUp(time.Now(), e.t.BytesMissing(), st.WebSeeds.BytesReadUsefulData.Int64(), st.BytesReadUsefulData.Int64())
	}
	if rule.join {
		a.addWebseeds(e, "no peers in the swarm")
	}
	unreachable := make(chan struct{})
	if !rule.join {
		go func() {
			if a.swarmUnreachable(e, a.cfg.PeerGrace) {
				close(unreachable)
			}
		}()
	}
	leave := rule.leave
	// The pieces of e's files that other batches of this agent hold and
	// fetch (see othersHold), left to the peers while the webseeds fetch
	// only the rest (nil: not so).
	var others *atomic.Pointer[[]bool]
	// Webseeds in from the start (no peers in the swarm) leave the slices
	// of shared files other batches fetch while shareRule has peers
	// deliver; shareDone once it no longer does.
	startJoined := rule.join
	var shareRule *webseedRule
	shareDone := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-unreachable:
			a.addWebseeds(e, "the swarm's peers are unreachable")
			unreachable = nil
		case <-a.stopped:
			return
		case <-e.t.Closed():
			return
		case <-e.t.Complete().On():
			a.announceCompleted(e)
			return
		case now := <-tick.C:
			if e.t.Complete().Bool() { // when both were ready
				a.announceCompleted(e)
				return
			}
			st := e.t.ConnStats()
			peerBytes := st.PeerConns.BytesReadUsefulData.Int64()
			rule.observe(now, peerBytes, e.t.PeersHaveWantedPieces())
			if catch != nil && e.webOn.Load() {
				if finish, alone, on := catch.observe(now, st.WebSeeds.BytesReadUsefulData.Int64(), e.t.WebseedsRequesting(), st.BytesReadUsefulData.Int64()); on {
					e.t.SetWebseedsLeaveOnlyRequestedPeerPieces(true)
					a.log.Info("webseeds take idle peer pieces", "torrent", e.t.InfoHash().HexString(), "reason", "the peers are slower than the mirror alone",
						"after", now.Sub(catch.start).Round(time.Millisecond), "finish", finish.Round(time.Millisecond), "mirror_alone", alone.Round(time.Millisecond))
					catch = nil
				}
			}
			if startJoined {
				// In from the start, the webseeds fetch everything until
				// peers deliver: hosts of other batches, which fetch their
				// slices of the shared files (see fetcher). Then they leave
				// those slices to them while peers keep delivering.
				if !shareDone && peerBytes > 0 {
					held, _ := a.othersHold(e, false)
					switch {
					case others == nil && held != nil:
						others = leaveHeld(e, held)
						shareRule = newWebseedRule(now, a.cfg.PeerGrace, -1)
						a.log.Info("webseeds leave the slices other batches fetch", "torrent", e.t.InfoHash().HexString())
					case others != nil:
						shareRule.observe(now, peerBytes, true)
						if shareRule.join {
							e.t.SetWebseedsLeave(nil)
							others, shareDone = nil, true
						} else {
							others.Store(&held)
						}
					}
				}
			} else if rule.join {
				a.addWebseeds(e, "peers delivered nothing")
				if others != nil {
					e.t.SetWebseedsLeave(nil)
					others = nil
				}
			} else if peerBytes > 0 {
				// The peers are up and deliver (they have told what they
				// have). Files the batches of other hosts connected here do
				// not hold come from no peer: the webseeds fetch those at
				// once, and this batch's slices of the shared ones (see
				// fetcher), and leave the rest to the peers until the rule
				// says join.
				held, unique := a.othersHold(e, others == nil)
				if others == nil && unique {
					others = leaveHeld(e, held)
					a.addWebseeds(e, "files no other batch holds, or its slices of shared ones")
				} else if others != nil {
					others.Store(&held)
				}
			}
			if rule.leave != leave {
				leave = rule.leave
				e.t.SetWebseedsLeavePeerPieces(leave)
				a.log.Info("webseeds leave peer pieces", "torrent", e.t.InfoHash().HexString(), "on", leave)
			}
		}
	}
}

// leaveHeld has e's webseeds leave the pieces held marks (see othersHold)
// and returns where to store the next marks.
func leaveHeld(e *entry, held []bool) *atomic.Pointer[[]bool] {
	p := &atomic.Pointer[[]bool]{}
	p.Store(&held)
	e.t.SetWebseedsLeave(func(i int) bool {
		h := *p.Load()
		return i < len(h) && h[i]
	})
	return p
}

// othersHold returns, per piece of e, whether the webseeds leave it to the
// peers: another torrent of this agent holds its file (the batch of a host
// connected here, adopted, or another fetch of this host) and e's batch is
// not the one of them that fetches that part of the file from the mirror
// (see fetcher). When asked (check), it also reports whether a piece the
// webseeds do not leave is not complete: only the webseeds will bring it.
// held is nil when the webseeds leave no piece (in a same-batch burst,
// every tick, without a piece map).
func (a *Agent) othersHold(e *entry, check bool) (held []bool, unique bool) {
	keys := e.layout.Keys()
	shared, sharers := a.sharers(e, keys)
	if !check && !slices.Contains(shared, true) {
		return nil, false
	}
	n := e.t.NumPieces()
	self := e.t.InfoHash()
	for j, k := range keys {
		end := n
		if j+1 < len(keys) {
			end = keys[j+1].FirstPiece
		}
		for i := k.FirstPiece; i < end && i < n; i++ {
			if shared[j] && (sharers == nil || len(sharers[j]) == 0 || !fetcher(self, sharers[j], k.Key, (i-k.FirstPiece)/fetchSlice)) {
				if held == nil {
					held = make([]bool, n)
				}
				held[i] = true
				continue
			}
			if check && !unique && !e.t.Piece(i).State().Complete {
				unique = true
			}
		}
	}
	return held, unique
}

// sharers returns, per file of e (keys, e's), whether another torrent of
// this agent holds it, and the info hashes of those that have a peer
// connected: the batches of the hosts that want the file too, or hold it.
// (A file only torrents without peers hold, such as another fetch of this
// host, is left to them, as it was before the choice of fetchers.)
// connected is nil when no such torrent has a peer.
func (a *Agent) sharers(e *entry, keys []store.SpanKey) (shared []bool, connected [][]metainfo.Hash) {
	others, shared := a.otherHolders(e, keys)
	if len(others) == 0 {
		return shared, nil
	}
	// The engine's lock, not under the agent's.
	peered := map[*entry]metainfo.Hash{}
	for o := range others {
		if len(o.t.PeerConns()) > 0 {
			peered[o] = o.t.InfoHash()
		}
	}
	if len(peered) == 0 {
		return shared, nil
	}
	connected = make([][]metainfo.Hash, len(keys))
	a.mu.Lock()
	defer a.mu.Unlock()
	for j, k := range keys {
		if !shared[j] {
			continue
		}
		for o := range a.holders[k.Key] {
			if ih, ok := peered[o]; ok && o != e {
				connected[j] = append(connected[j], ih)
			}
		}
	}
	return shared, connected
}

// fetchSlice is the part of a shared file, in pieces, that one of the
// batches holding it fetches from the mirror for all (see fetcher).
const fetchSlice = 16

// fetcher reports whether the batch self is the one of self and others
// (the other batches holding a file, of the hosts connected) that fetches
// the slice-th fetchSlice pieces of the file with content key key from the
// mirror. Every host whose batch holds the file computes the same choice
// from the same batches, so the mirror sends each slice of a shared file
// about once, and the hosts fetch their slices at once instead of waiting
// for peers that would not fetch them either; the peers trade the rest.
// The choice is spread over the batches by a hash of the batch, the file
// and the slice.
func fetcher(self metainfo.Hash, others []metainfo.Hash, key string, slice int) bool {
	rank := func(ih metainfo.Hash) uint64 {
		h := fnv.New64a()
		h.Write(ih[:])
		h.Write([]byte(key))
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(slice))
		h.Write(b[:])
		// FNV-1a's last bytes barely reach its high bits: mix them
		// (MurmurHash3's finalizer), so the order spreads.
		x := h.Sum64()
		x ^= x >> 33
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
		x *= 0xc4ceb9fe1a85ec53
		x ^= x >> 33
		return x
	}
	mine := rank(self)
	for _, o := range others {
		if o != self && rank(o) < mine {
			return false
		}
	}
	return true
}

// swarmUnreachable reports whether none of the peers the first of e's
// trackers that answers lists (but this agent) accepts a connection within
// timeout, or it lists none. A tracker lists seeders that have gone
// without a "stopped" announce (killed, or their machine lost power) until
// they expire; without this check every newcomer would wait PeerGrace for
// them (and fail its fetch if PeerGrace is longer than the client's stall
// timeout). A refused connection answers at once.
func (a *Agent) swarmUnreachable(e *entry, timeout time.Duration) bool {
	peers, ok := a.otherPeers(e.trackers, e.t.InfoHash(), e.t.BytesMissing())
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reached := make(chan bool, len(peers))
	for _, p := range peers {
		go func() {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", p.String())
			if err == nil {
				c.Close()
			}
			reached <- err == nil
		}()
	}
	for range peers {
		if <-reached {
			return false
		}
	}
	return true
}

// webseedRule holds the webseed policy's decisions for one torrent, apart
// from the engine: fed what the host sees of its peers, it says whether the
// webseeds join (once joined, they stay) and whether they leave the pieces
// connected peers have to those peers.
type webseedRule struct {
	grace        time.Duration
	lastBytes    int64
	lastDelivery time.Time // peers delivered something
	lastFine     time.Time // peers delivered, or had nothing we want
	join, leave  bool
}

// newWebseedRule starts the rule at now for a torrent whose trackers know
// swarm peers (-1: unknown): with none, the webseeds join at once.
func newWebseedRule(now time.Time, grace time.Duration, swarm int) *webseedRule {
	return &webseedRule{grace: grace, lastDelivery: now, lastFine: now, join: swarm == 0, leave: true}
}

// observe takes, at now, the useful bytes received from peers so far and
// whether connected peers have pieces the host still wants.
func (r *webseedRule) observe(now time.Time, peerBytes int64, peersHaveWanted bool) {
	if peerBytes > r.lastBytes {
		r.lastBytes, r.lastDelivery, r.lastFine = peerBytes, now, now
	} else if !peersHaveWanted {
		r.lastFine = now
	}
	if now.Sub(r.lastDelivery) >= r.grace {
		r.join = true
	}
	r.leave = now.Sub(r.lastFine) < leaveGrace*r.grace
}

// catchUp decides, for one torrent, when its webseeds catch up with peers
// that are slower than the mirror (Settings.WebseedCatchUp): from then on
// they also fetch the pieces peers have but nobody is fetching from them,
// as with WebseedIdlePieces. That is when the webseeds have nothing left to
// fetch and, at its peers' rate over the last catchUpWindow, the host would
// not finish clearly sooner (catchUpMargin) than the webseeds alone would have
// brought what it was missing: than plain HTTP from the same mirror. The
// mirror of a big burst, shared by many hosts, is slow to each, and their
// peers win: it still sends each piece about once. With a few hosts and a
// mirror faster than their uploads, the mirror fills in and they end no
// later than plain HTTP would. Once on, it stays on.
//
// The webseeds' rate is the lower of the one they had from the start to
// their last byte and the one of their last catchUpWindow, in wall time: a
// mirror shared by many sends to each host in bursts and gaps, the first
// hosts of a burst to start have it to themselves for a moment, and the
// last to fetch their share from it find it less busy than it would be
// with every host fetching the whole batch.
type catchUp struct {
	start   time.Time
	missing int64 // bytes missing at start
	// The webseeds' and all sources' useful bytes at start (the engine's
	// counts, which are cheap to read; the bytes missing are not: a walk
	// over the pieces).
	web0, got0 int64
	// The webseeds' useful bytes when they last grew, and at the times
	// they grew within catchUpWindow before that, with the last time
	// before it, oldest first.
	web []catchUpSample
	// The peers' useful bytes when they last grew, and at the times they
	// grew within catchUpWindow before that, with the last time before
	// it, oldest first.
	peers []catchUpSample
}

// catchUpSample is a byte count at a time.
type catchUpSample struct {
	at    time.Time
	bytes int64
}

// catchUpWindow is the span over which catchUp measures rates;
// catchUpMinBusy is the least span of the webseeds' deliveries whose rate
// counts. catchUpMargin is the share of the mirror alone's time a fetch is
// to end within: the webseeds need time to catch up once they start, and a
// host's rate is known only a window late.
const (
	catchUpWindow  = time.Second
	catchUpMinBusy = 500 * time.Millisecond
	catchUpMargin  = 0.8
)

// newCatchUp starts the rule at now for a torrent missing missing bytes,
// whose webseeds have brought web bytes so far, and all its sources got.
func newCatchUp(now time.Time, missing, web, got int64) *catchUp {
	return &catchUp{start: now, missing: missing, web0: web, got0: got, web: []catchUpSample{{now, 0}}, peers: []catchUpSample{{now, 0}}}
}

// observe takes, at now, the useful bytes the webseeds (web) and all
// sources (got) have brought so far and whether the webseeds have a
// request in flight, and reports whether the webseeds should take idle
// peer pieces from now on, and why: when the fetch would finish at the
// peers' rate, and when it would have by the mirror alone (both from the
// start; 0 until known).
func (c *catchUp) observe(now time.Time, web int64, requesting bool, got int64) (finish, alone time.Duration, on bool) {
	webBytes, gotBytes := web-c.web0, got-c.got0
	missing := c.missing - gotBytes
	c.web = trimSamples(c.web, webBytes, now)
	c.peers = trimSamples(c.peers, gotBytes-webBytes, now)
	last, old := c.web[len(c.web)-1], c.peers[0]
	webSpan, span := last.at.Sub(c.web[0].at), now.Sub(old.at)
	// Webseeds still fetching what they fetch anyway (the pieces no peer
	// has, their slices) would gain nothing from more to fetch; a burst's
	// start, while the hosts' peers have little yet, is slow.
	if requesting || last.bytes == 0 || webSpan < catchUpMinBusy || span < catchUpWindow || missing <= 0 {
		return 0, 0, false
	}
	rate := min(float64(last.bytes-c.web[0].bytes)/float64(webSpan), float64(last.bytes)/float64(last.at.Sub(c.start)))
	alone = time.Duration(float64(c.missing) / rate)
	// The webseeds idle, the rest comes from the peers, at their rate.
	gained := gotBytes - webBytes - old.bytes
	if gained <= 0 {
		// Nothing arrived from them for a whole window.
		return time.Duration(math.MaxInt64), alone, true
	}
	finish = now.Sub(c.start) + time.Duration(float64(missing)/float64(gained)*float64(span))
	return finish, alone, float64(finish) > catchUpMargin*float64(alone)
}

// trimSamples adds v at now to samples when it changed (or samples is
// empty), and drops the samples older than catchUpWindow before the newest
// but the newest of those.
func trimSamples(samples []catchUpSample, v int64, now time.Time) []catchUpSample {
	if len(samples) == 0 || samples[len(samples)-1].bytes != v {
		samples = append(samples, catchUpSample{now, v})
	}
	newest := samples[len(samples)-1].at
	for len(samples) > 1 && newest.Sub(samples[1].at) >= catchUpWindow {
		samples = samples[1:]
	}
	return samples
}

// leaveGrace is how many PeerGraces peers that have pieces we want may
// deliver nothing before the webseeds take those pieces too. In a burst of
// hosts with capped uploads a host's peers often send nothing for a second
// or two; at one PeerGrace the mirror then sent markedly more of the batch
// (figures: third_party/torrent/PKGTORRENT.md).
const leaveGrace = 3

// leaveSwarms tells the trackers of every torrent that this agent (peer id
// and port) stops (event=stopped), all at once and within the web client's
// timeout. The engine does not when it closes, and a tracker that still
// counts an exited agent as a seeder makes every newcomer wait PeerGrace
// for it. It waits for "completed" announces in flight and no later one
// is sent: one that crossed the "stopped" would list the agent again.
func (a *Agent) leaveSwarms(id [20]byte, port int) {
	a.announces.Lock()
	defer a.announces.Unlock()
	a.left = true
	a.mu.Lock()
	var wg sync.WaitGroup
	for ih, e := range a.entries {
		for _, tr := range e.trackers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := tracker.AnnounceEvent(a.web, tr, ih, id, port, "stopped"); err != nil {
					a.log.Debug("stopped announce failed", "tracker", tr, "err", err)
				}
			}()
		}
	}
	a.mu.Unlock()
	wg.Wait()
}

// spreadOrder makes this host start the torrent at a random piece and wrap
// around (pieces from the offset on get a higher priority). The engine asks
// webseeds for the wanted pieces in priority, then index order: without
// this, every host of a burst would pull the same pieces from the mirror at
// the same time, and none would have anything to give the others.
func spreadOrder(t *torrent.Torrent) {
	n := t.NumPieces()
	if n < 2 {
		return
	}
	for i := rand.IntN(n); i < n; i++ {
		t.Piece(i).SetPriority(torrent.PiecePriorityHigh)
	}
}

// swarmSize asks the trackers (first that answers) what peers they know for
// ih; ok is false when none answers.
func (a *Agent) swarmSize(trackers [][]string, ih metainfo.Hash) (c tracker.Counts, ok bool) {
	for _, tier := range trackers {
		for _, tr := range tier {
			c, err := tracker.ScrapeCounts(a.web, tr, ih)
			if err == nil {
				return c, true
			}
			a.log.Debug("scrape failed", "tracker", tr, "err", err)
		}
	}
	return tracker.Counts{}, false
}

func (a *Agent) addWebseeds(e *entry, why string) {
	if e.webOn.Swap(true) {
		return
	}
	a.log.Info("webseeds join", "torrent", e.t.InfoHash().HexString(), "reason", why)
	e.t.AddWebSeeds(e.webseeds, torrent.WebSeedPathEscaper(torrentPath))
	e.t.AddWebSeeds(e.mirrors, torrent.WebSeedPathEscaper(mirrorPath))
}
