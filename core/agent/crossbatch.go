package agent

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/core/tracker"
)

// Sharing across batches. A batch torrent is one exact set of files, but the
// store keeps one data file per file content: a host that fetched batch A
// holds every file of A for any other batch B that contains it. Two things
// make hosts of different batches trade:
//
//   - The service's tracker answers an announce for B with agents of the
//     batches that share files with B, too.
//   - An agent that gets a handshake for a batch it does not have asks its
//     own configured service for that torrent by info hash (the service
//     vouches for it: it built it), and adopts it when the store holds some
//     of its files: the torrent is added to the engine downloading nothing,
//     serving the pieces of the files held. Anything else (an info hash the
//     service does not know, a batch of files the agent does not hold, no
//     service configured) gets the connection closed, and the info hash is
//     not asked about again for a while.
//
// Within one agent, a piece completed in one torrent is told to every other
// torrent holding the same file (holders), so it is neither fetched twice
// nor missing from what the others announce.
//
// Trade goes both ways: an agent that another agent connects to (for a
// batch of its own, which this one adopts) dials that agent back for the
// batches this one is fetching (introduce), and that agent adopts them in
// turn. Without it, in a burst the hosts that announced first would learn
// of the later ones only at their next announce, and only serve them.

// adoption is the state of adopting batches of other hosts.
type adoption struct {
	mu       sync.Mutex
	refused  map[metainfo.Hash]time.Time // info hash -> until when
	inFlight map[metainfo.Hash]chan struct{}
	slots    chan struct{}
}

const (
	// refuseFor is how long an info hash that was not adopted is refused
	// without asking the service again.
	refuseFor = 5 * time.Minute
	// maxRefused bounds the refused info hashes remembered.
	maxRefused = 4096
	// adoptLookups bounds the service lookups in flight.
	adoptLookups = 4
)

// onHandshake is the engine's CompletedHandshake callback: it runs before
// the engine looks the info hash up, without the engine's lock, so a
// torrent adopted here is the one the connection continues with.
func (a *Agent) onHandshake(_ *torrent.PeerConn, ih metainfo.Hash) {
	a.mu.Lock()
	_, ok := a.entries[ih]
	a.mu.Unlock()
	if ok {
		return
	}
	if err := a.adoptBatch(ih); err != nil {
		a.log.Debug("not adopting a batch", "torrent", ih.HexString(), "err", err)
	}
}

// adoptBatch adds the batch ih to the engine, serving what the store holds
// of it, if the configured service vouches for it.
func (a *Agent) adoptBatch(ih metainfo.Hash) error {
	if a.cfg.Service == "" {
		return errors.New("no service configured")
	}
	ad := &a.adopt
	ad.mu.Lock()
	if ad.refused == nil {
		ad.refused = map[metainfo.Hash]time.Time{}
		ad.inFlight = map[metainfo.Hash]chan struct{}{}
		ad.slots = make(chan struct{}, adoptLookups)
	}
	if until, ok := ad.refused[ih]; ok && time.Now().Before(until) {
		ad.mu.Unlock()
		return errors.New("refused recently")
	}
	if wait, ok := ad.inFlight[ih]; ok {
		ad.mu.Unlock()
		<-wait // another connection is asking; its answer is ours
		return nil
	}
	select {
	case ad.slots <- struct{}{}:
	default:
		ad.mu.Unlock()
		return errors.New("too many lookups in flight")
	}
	done := make(chan struct{})
	ad.inFlight[ih] = done
	ad.mu.Unlock()
	err := a.lookupAndAdopt(ih)
	ad.mu.Lock()
	delete(ad.inFlight, ih)
	<-ad.slots
	if err != nil {
		if len(ad.refused) >= maxRefused {
			clear(ad.refused)
		}
		ad.refused[ih] = time.Now().Add(refuseFor)
	}
	ad.mu.Unlock()
	close(done)
	return err
}

func (a *Agent) lookupAndAdopt(ih metainfo.Hash) error {
	b, err := askService(context.Background(), api.InfohashURL(a.cfg.Service, ih), 5*time.Second)
	if err != nil {
		return err
	}
	mi, info, mirrors, err := torrentfile.Parse(b)
	if err != nil {
		return err
	}
	if mi.HashInfoBytes() != ih {
		return errors.New("the service answered with another torrent")
	}
	spans, err := torrentfile.Layout(info)
	if err != nil {
		return err
	}
	held := 0
	for _, sp := range spans {
		if a.store.Holds(sp) {
			held++
		}
	}
	if held == 0 {
		return errors.New("none of its files is held here")
	}
	if _, err := a.insert(mi, info, mirrors, 0, true); err != nil {
		return err
	}
	a.log.Info("adopted a batch of another host", "torrent", ih.HexString(), "files_held", held, "files", len(spans))
	return nil
}

// holders maps a data file's content key to the torrents holding the file,
// with the index of its first piece in each.
type holders map[string]map[*entry]int

func (h *holders) add(e *entry) {
	if *h == nil {
		*h = holders{}
	}
	for _, k := range e.layout.Keys() {
		m := (*h)[k.Key]
		if m == nil {
			m = map[*entry]int{}
			(*h)[k.Key] = m
		}
		m[e] = k.FirstPiece
	}
}

func (h holders) remove(e *entry) {
	for _, k := range e.layout.Keys() {
		if m := h[k.Key]; m != nil {
			delete(m, e)
			if len(m) == 0 {
				delete(h, k.Key)
			}
		}
	}
}

// completedPiece is a piece of a data file marked complete.
type completedPiece struct {
	key   string
	piece int
}

// propagate tells every torrent holding a data file about its pieces
// completed through another torrent, until the agent stops.
func (a *Agent) propagate(done <-chan completedPiece) {
	for {
		select {
		case <-a.stopped:
			return
		case c := <-done:
			a.mu.Lock()
			type held struct {
				e     *entry
				piece int
			}
			var hs []held
			for e, first := range a.holders[c.key] {
				hs = append(hs, held{e, first + c.piece})
			}
			a.mu.Unlock()
			for _, h := range hs {
				select {
				case <-h.e.t.Closed():
					continue
				default:
				}
				if p := h.e.t.Piece(h.piece); !p.State().Complete {
					p.UpdateCompletion()
				}
			}
		}
	}
}

// introduce is the engine's ReadExtendedHandshake callback (the engine's
// lock may be held: it only queues): the listen address of an agent that
// connected to us goes to dialBack.
func (a *Agent) introduce(pc *torrent.PeerConn, m *pp.ExtendedHandshakeMessage) {
	if m.Port <= 0 || m.Port > 65535 || !bytes.HasPrefix(pc.PeerID[:], []byte(tracker.AgentIDPrefix)) {
		return
	}
	ap, err := netip.ParseAddrPort(pc.RemoteAddr.String())
	if err != nil {
		return
	}
	select {
	case a.introduced <- netip.AddrPortFrom(ap.Addr().Unmap(), uint16(m.Port)):
	default:
	}
}

// dialBack gives the agents introduced to it as peers to every torrent this
// agent is fetching and has not completed, until the agent stops.
func (a *Agent) dialBack() {
	for {
		select {
		case <-a.stopped:
			return
		case addr := <-a.introduced:
			a.mu.Lock()
			var ts []*torrent.Torrent
			for _, e := range a.entries {
				if e.users > 0 {
					ts = append(ts, e.t)
				}
			}
			a.mu.Unlock()
			for _, t := range ts {
				if !t.Complete().Bool() {
					t.AddPeers([]torrent.PeerInfo{{Addr: addr, Source: torrent.PeerSourceIncoming}})
				}
			}
		}
	}
}
