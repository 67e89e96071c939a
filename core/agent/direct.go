package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/core/store"
	"github.com/pkgtorrent/pkgtorrent/core/tracker"
)

// A direct fetch: when no peer has a batch, the fastest way to it is the
// package manager's own, a few plain HTTP downloads from the mirror; the
// engine, asking the webseed for many small ranges and hashing them, is
// slower and costs more CPU. The client downloads the files, checks them
// against the torrent and places them; it then passes each placed file to
// the agent (an open descriptor, read-only), which checks it again and
// takes it into the store, piece by piece: from then on the torrent seeds
// it, while the rest of the batch is still arriving. The host is announced
// before the client starts, so the next host of a burst finds it and
// fetches through the swarm, from the pieces this one already seeds and
// from the webseed.

// alone announces this host for the torrent ih (left bytes to download) to
// the first of trackers that answers and reports whether it sent back no
// other peer. A tracker answers announces one at a time: of hosts that
// start the same batch at once, only the first is alone.
func (a *Agent) alone(trackers [][]string, ih metainfo.Hash, left int64) bool {
	peers, ok := a.otherPeers(slices.Concat(trackers...), ih, left)
	return ok && len(peers) == 0
}

// otherPeers announces this host ("started", left bytes to download) for
// the torrent ih to the first of trackers that answers and returns the
// peers it lists but this host; ok is false when none answers.
func (a *Agent) otherPeers(trackers []string, ih metainfo.Hash, left int64) (peers []netip.AddrPort, ok bool) {
	id, port := a.cl.PeerID(), a.cl.LocalPort()
	for _, tr := range trackers {
		peers, err := tracker.Announce(a.web, tr, ih, id, port, "started", left)
		if err != nil {
			a.log.Debug("announce failed", "tracker", tr, "err", err)
			continue
		}
		return slices.DeleteFunc(peers, func(p netip.AddrPort) bool { return a.isSelf(p, port) }), true
	}
	return nil, false
}

// A claim holds the files of a direct fetch from the agent's decision to
// offer it (see claimDirect) until its entry is among the holders, where
// yieldShared finds it: a fetch of another batch sharing those files that
// starts meanwhile must still end the direct downloads.
type claim struct {
	keys    []store.SpanKey
	yielded bool // under Agent.mu
}

// claimDirect reports whether no fetch of this agent, started or being
// started directly, holds one of the files of layout, and if so claims
// them for a direct fetch until endClaim. The check and the claim are one
// step: of two fetches sharing files that start at once, at most one goes
// direct, and the other then yields it.
func (a *Agent) claimDirect(layout *store.Torrent) (*claim, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := layout.Keys()
	for _, k := range keys {
		for e := range a.holders[k.Key] {
			if e.users > 0 {
				return nil, false
			}
		}
	}
	for c := range a.claims {
		if sharesKey(c.keys, keys) {
			return nil, false
		}
	}
	c := &claim{keys: keys}
	if a.claims == nil {
		a.claims = map[*claim]struct{}{}
	}
	a.claims[c] = struct{}{}
	return c, true
}

// endClaim drops c, its direct fetch's entry e now among the holders (nil:
// the fetch did not start), and passes on a yield that came meanwhile.
func (a *Agent) endClaim(c *claim, e *entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.claims, c)
	if e != nil && c.yielded {
		e.yieldOnce.Do(func() { close(e.yield) })
	}
}

// sharesKey reports whether a and b name a content in common.
func sharesKey(a, b []store.SpanKey) bool {
	in := make(map[string]bool, len(a))
	for _, k := range a {
		in[k.Key] = true
	}
	for _, k := range b {
		if in[k.Key] {
			return true
		}
	}
	return false
}

// yieldShared ends the direct fetches that share files with e (e's own,
// when a second fetch of the same batch joins it), and those being
// started: their clients leave the rest to the engine, where a piece
// completed for one torrent is complete for every torrent holding the file
// (see propagate), so that the two fetches do not both get those files.
func (a *Agent) yieldShared(e *entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := e.layout.Keys()
	for _, k := range keys {
		for o := range a.holders[k.Key] {
			o.yieldOnce.Do(func() { close(o.yield) })
		}
	}
	for c := range a.claims {
		if sharesKey(c.keys, keys) {
			c.yielded = true
		}
	}
}

// isSelf reports whether p is this host's own peer address, which some
// trackers send back to the announcer.
func (a *Agent) isSelf(p netip.AddrPort, port int) bool {
	if int(p.Port()) != port {
		return false
	}
	if p.Addr().IsLoopback() || p.Addr().IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == p.Addr().Unmap() {
				return true
			}
		}
	}
	return false
}

// peered reports whether a peer is connected for e's torrent or for
// another torrent holding one of its files (keys, e's): hosts fetching
// other batches that share files with e (see crossbatch.go) connect for
// their own batches, which this agent adopted.
func (a *Agent) peered(e *entry, keys []store.SpanKey) bool {
	if len(e.t.PeerConns()) > 0 {
		return true
	}
	others, _ := a.otherHolders(e, keys)
	for o := range others {
		if len(o.t.PeerConns()) > 0 {
			return true
		}
	}
	return false
}

// otherHolders returns the torrents of this agent other than e that hold
// one of e's files (keys, e's), and per file whether one does.
func (a *Agent) otherHolders(e *entry, keys []store.SpanKey) (others map[*entry]struct{}, shared []bool) {
	others, shared = map[*entry]struct{}{}, make([]bool, len(keys))
	a.mu.Lock()
	defer a.mu.Unlock()
	for j, k := range keys {
		for o := range a.holders[k.Key] {
			if o != e {
				others[o] = struct{}{}
				shared[j] = true
			}
		}
	}
	return others, shared
}

// direct takes the files the client of a direct fetch sends (add told it
// to download them) until it hangs up, or asks the agent to fetch the rest
// (more). Once a peer connects for the torrent, or for another batch that
// shares files with it, the agent tells the client so ("swarm"): in a
// burst, the hosts share the origin's work only when each fetches through
// the swarm.
func (a *Agent) direct(e *entry, cl client) (more bool, err error) {
	a.log.Info("direct fetch", "torrent", e.t.InfoHash().HexString(), "files", len(e.files))
	fr, err := cl.files()
	if err != nil {
		return false, err
	}
	defer fr.Close()
	keys := e.layout.Keys()
	end := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-end:
				return
			case <-a.stopped:
				return
			case <-e.yield:
				a.log.Info("direct fetch: another fetch shares its files", "torrent", e.t.InfoHash().HexString())
				cl.send(control.Reply{Type: "swarm"})
				return
			case <-tick.C:
				if a.peered(e, keys) {
					a.log.Info("direct fetch: peers arrived", "torrent", e.t.InfoHash().HexString())
					cl.send(control.Reply{Type: "swarm"})
					return
				}
			}
		}
	}()
	defer func() {
		close(end)
		<-watched // no reply of its own after ours
	}()
	type job struct {
		path string
		f    *os.File
	}
	// The files are taken in as they come while peers are connected (a
	// burst: they want what this host has); without peers, once the client
	// is done, so that the two do not compete for the disk and the CPU
	// while the package manager waits (at most maxDeferred files wait).
	var (
		mu     sync.Mutex
		queue  []job
		eof    bool
		failed sync.Once
		wg     sync.WaitGroup
	)
	next := func() (job, bool) {
		for {
			mu.Lock()
			if len(queue) > 0 && (eof || len(queue) > maxDeferred || a.peered(e, keys)) {
				j := queue[0]
				queue = queue[1:]
				mu.Unlock()
				return j, true
			}
			done := eof && len(queue) == 0
			mu.Unlock()
			if done {
				return job{}, false
			}
			select {
			case <-a.stopped:
				return job{}, false
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, ok := next()
				if !ok {
					return
				}
				err := a.importFile(e, j.path, j.f)
				j.f.Close()
				a.importing.Add(-1)
				if err != nil {
					failed.Do(func() { a.log.Warn("direct fetch: file not taken", "torrent", e.t.InfoHash().HexString(), "err", err) })
				}
			}
		}()
	}
	received, held := 0, len(e.layout.Held())
	for {
		req, files, err := fr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				a.log.Warn("direct fetch: bad import", "torrent", e.t.InfoHash().HexString(), "err", err)
			}
			break
		}
		if req.Op == "fetch" {
			more = true
			break
		}
		// The client sends each file once: no more descriptors than the
		// batch has files are held for it.
		if received += len(files); received > len(e.files) {
			for _, f := range files {
				f.Close()
			}
			a.log.Warn("direct fetch: more files than the batch has", "torrent", e.t.InfoHash().HexString())
			break
		}
		mu.Lock()
		for i, f := range files {
			queue = append(queue, job{req.Paths[i], f})
		}
		a.importing.Add(int64(len(files)))
		mu.Unlock()
	}
	if !more && received+held == len(e.files) {
		// Every file is here, about to be taken in: the trackers hear of
		// a seeder now, so that a host arriving meanwhile waits for this
		// one (the intake starts at once when it connects) instead of
		// taking the batch from the mirror.
		a.announceCompleted(e)
	}
	mu.Lock()
	eof = true
	mu.Unlock()
	wg.Wait()
	mu.Lock()
	for _, j := range queue { // the agent stopped
		j.f.Close()
		a.importing.Add(-1)
	}
	mu.Unlock()
	// The engine learns of the pieces through the store's completion hook
	// (see propagate): tell the trackers once it has them all.
	go func() {
		select {
		case <-e.t.Complete().On():
			a.announceCompleted(e)
		case <-e.t.Closed():
		case <-a.stopped:
		case <-time.After(time.Minute):
		}
	}()
	return more, nil
}

// maxDeferred is how many files of a direct fetch wait, open, while no peer
// is connected: past that they are taken in at once.
const maxDeferred = 4096

// importFile takes the torrent's file path from f, which must be a regular
// file (a pipe or device could block the agent).
func (a *Agent) importFile(e *entry, path string, f *os.File) error {
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("import %s: not a regular file", path)
	}
	n, err := e.layout.Import(path, f)
	a.imported.Add(n)
	return err
}
