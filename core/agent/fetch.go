package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/core/store"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/core/tracker"
)

func (a *Agent) busy(delta int) {
	a.mu.Lock()
	a.active += delta
	a.lastWork = time.Now()
	a.mu.Unlock()
}

// client is the agent's side of a client's fetch connection.
type client struct {
	send func(control.Reply) error
	// watch starts watching for the client hanging up, which cancels the
	// fetch (the connection is read by nothing else from then on).
	watch func()
	// files returns the reader of the client's import requests, for a
	// direct fetch (instead of watch).
	files func() (*control.FileReceiver, error)
}

func (a *Agent) fetch(ctx context.Context, req control.Request, trusted bool, cl client) error {
	send := cl.send
	a.busy(1)
	defer a.busy(-1)
	mi, info, mirrors, err := torrentfile.Parse(req.Torrent)
	if err != nil {
		return err
	}
	if !trusted {
		if err := a.vouch(ctx, req, info); err != nil {
			return err
		}
	}
	var offer func(held map[string]store.Data) error
	if req.Direct {
		offer = func(held map[string]store.Data) error {
			return send(withFiles(control.Reply{Type: "direct"}, held))
		}
	}
	e, direct, err := a.add(mi, info, append(mirrors, req.Mirrors...), offer)
	if err != nil {
		return err
	}
	defer a.release(e)
	if direct {
		more, err := a.direct(e, cl)
		if err != nil || !more {
			return err
		}
		// The client leaves the rest to the engine: the webseeds join at
		// once, for the pieces no peer has.
		a.download(e, 0)
	}
	cl.watch()
	base := e.t.ConnStats()
	// completed is the torrent's BytesCompleted: one pass over its pieces
	// per tick, shared with the stall check.
	progress := func(completed int64) control.Progress {
		s := e.t.ConnStats()
		p := control.Progress{
			Total:       e.payload,
			FromPeers:   s.PeerConns.BytesReadUsefulData.Int64() - base.PeerConns.BytesReadUsefulData.Int64(),
			FromWebseed: s.WebSeeds.BytesReadUsefulData.Int64() - base.WebSeeds.BytesReadUsefulData.Int64(),
			Peers:       len(e.t.PeerConns()),
			Webseed:     e.webOn.Load(),
		}
		// The torrent's count, padding included, scaled to the payload:
		// one pass over the missing pieces, where summing the files'
		// counts cost a bitmap per file.
		if length := e.t.Length(); length > 0 {
			p.Completed = int64(float64(completed) / float64(length) * float64(e.payload))
		}
		return p
	}
	// Files complete before the batch is are reported as they complete, so
	// that the client places them while the rest downloads.
	// The store's own record of each data file's pieces decides (see
	// Torrent.Complete): asking the engine each file's completed bytes cost
	// 6% of an agent's CPU in a burst of 1,000 files.
	rels := make([]string, len(e.files))
	for i, f := range e.files {
		rels[i] = strings.Join(f.FileInfo().Path, "/")
	}
	// unreported are the files not yet reported complete: each tick looks
	// at these only.
	unreported := slices.Clone(rels)
	completeFiles := func() map[string]store.Data {
		var out map[string]store.Data
		unreported = slices.DeleteFunc(unreported, func(rel string) bool {
			if !e.layout.Complete(rel) {
				return false
			}
			if out == nil {
				out = map[string]store.Data{}
			}
			out[rel], _ = e.layout.Data(rel)
			return true
		})
		return out
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var lastDone int64
	lastMove := time.Now()
	for {
		done := e.t.Complete().On()
		if err := e.failed.Load(); err != nil {
			return *err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.stopped:
			return errors.New("agent stopped")
		case <-e.t.Closed():
			if err := e.failed.Load(); err != nil {
				return *err
			}
			return errors.New("torrent dropped by the agent")
		case <-done:
			files := map[string]store.Data{}
			for _, rel := range rels {
				if !e.layout.Complete(rel) {
					return fmt.Errorf("%s: data changed on disk after verification", rel)
				}
				files[rel], _ = e.layout.Data(rel)
			}
			if err := send(withFiles(control.Reply{Type: "done", Progress: progress(e.t.BytesCompleted())}, files)); err != nil {
				return err
			}
			// The client places the files, then hangs up: until then the
			// data must stay (see enforceMaxDisk), for a bounded time.
			select {
			case <-ctx.Done():
			case <-a.stopped:
			case <-time.After(placeTimeout):
			}
			return nil
		case <-tick.C:
			c := e.t.BytesCompleted()
			p := progress(c)
			if c > lastDone {
				lastDone, lastMove = c, time.Now()
			} else if time.Since(lastMove) > fetchStall {
				return fmt.Errorf("no progress for %s", fetchStall)
			}
			rep := control.Reply{Type: "progress", Progress: p}
			if files := completeFiles(); files != nil {
				rep.Type = "files"
				rep = withFiles(rep, files)
			}
			if err := send(rep); err != nil {
				return err
			}
		}
	}
}

// withFiles returns rep naming files: where each one's data lies.
func withFiles(rep control.Reply, files map[string]store.Data) control.Reply {
	rep.Files = make(map[string]string, len(files))
	for rel, d := range files {
		rep.Files[rel] = d.Path
		if d.Offset != 0 {
			if rep.Offsets == nil {
				rep.Offsets = map[string]int64{}
			}
			rep.Offsets[rel] = d.Offset
		}
	}
	return rep
}

// add returns the entry for a torrent a client fetches, adding it to the
// engine if new, and makes sure the whole torrent is being downloaded (an
// entry adopted to serve another host's batch starts downloading now).
// When the client offered to download the files itself (offer not nil)
// and no peer has the torrent (see alone), add tells the client so with
// offer, naming the files the store holds, and returns the new entry not
// downloading, and true: the client downloads the other files and imports
// them.
func (a *Agent) add(mi *metainfo.MetaInfo, info *metainfo.Info, mirrors []string, offer func(held map[string]store.Data) error) (*entry, bool, error) {
	ih := mi.HashInfoBytes()
	a.mu.Lock()
	e, ok := a.entries[ih]
	if ok {
		e.users++
	}
	a.mu.Unlock()
	swarm := -1
	if ok {
		// A direct fetch of this batch leaves it to the engine.
		a.yieldShared(e)
	} else {
		// Ask the tracker before the engine announces us: we are not a peer.
		counts, ok := a.swarmSize(mi.UpvertedAnnounceList(), ih)
		if ok {
			// Leechers do not count for the webseeds: a host that starts
			// with others (a burst) would wait for peers that have
			// nothing yet, while the origin idles; the webseeds leave
			// the pieces connected peers have to them anyway.
			swarm = counts.Complete + counts.Related
		}
		if offer != nil && ok && counts == (tracker.Counts{}) {
			layout, err := a.store.Layout(info)
			if err != nil {
				return nil, false, err
			}
			// A file another fetch of this agent is getting is left to it
			// (see propagate): the whole batch goes through the engine.
			if c, ok := a.claimDirect(layout); ok {
				if a.alone(mi.UpvertedAnnounceList(), ih, info.TotalLength()) {
					// The client starts at once; the engine takes the
					// torrent meanwhile (tens of milliseconds for a
					// thousand files).
					err = offer(layout.Held())
					layout.Close()
					if err != nil {
						a.endClaim(c, nil)
						return nil, false, err
					}
					e, err := a.insert(mi, info, mirrors, 1, false)
					a.endClaim(c, e)
					return e, err == nil, err
				}
				a.endClaim(c, nil)
			}
			layout.Close()
		}
		var err error
		if e, err = a.insert(mi, info, mirrors, 1, false); err != nil {
			return nil, false, err
		}
		a.yieldShared(e)
	}
	a.download(e, swarm)
	return e, false, nil
}

// download makes sure the whole torrent of e is being downloaded (once),
// its trackers knowing swarm peers (-1: unknown; see webseedPolicy).
func (a *Agent) download(e *entry, swarm int) {
	e.fetching.Do(func() {
		if e.announceList != nil {
			// An adopted batch: now it is ours, the trackers hear of it.
			a.mu.Lock()
			for _, tier := range e.announceList {
				e.trackers = append(e.trackers, tier...)
			}
			a.mu.Unlock()
			e.t.AddTrackers(e.announceList)
		}
		e.t.DownloadAll()
		spreadOrder(e.t)
		go a.webseedPolicy(e, swarm)
	})
}

// insert adds a torrent to the engine with users users, or takes users more
// on the entry already there. The new entry downloads nothing yet: it
// serves what the store holds of it. An adopted batch (adopted) is not
// announced to its trackers until a client fetches it: the agent is found
// through the swarms of its own batches, and a tracker hears from each host
// about its own batches only.
func (a *Agent) insert(mi *metainfo.MetaInfo, info *metainfo.Info, mirrors []string, users int, adopted bool) (*entry, error) {
	ih := mi.HashInfoBytes()
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.entries[ih]; ok {
		e.users += users
		return e, nil
	}
	layout, err := a.store.Layout(info)
	if err != nil {
		return nil, err
	}
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		layout.Close()
		return nil, fmt.Errorf("torrent: %w", err)
	}
	e := &entry{layout: layout, webseeds: spec.Webseeds, users: users, lastUsed: time.Now(), yield: make(chan struct{})}
	if adopted {
		e.announceList = spec.Trackers
		spec.Trackers = nil
	} else {
		for _, tier := range mi.UpvertedAnnounceList() {
			e.trackers = append(e.trackers, tier...)
		}
	}
	spec.Webseeds = nil // the webseed policy adds them
	spec.ChunkSize = peerChunkSize
	for _, m := range mirrors {
		if !strings.HasSuffix(m, "/") {
			m += "/"
		}
		e.mirrors = append(e.mirrors, m)
	}
	t, _, err := a.cl.AddTorrentSpec(spec)
	if err != nil {
		layout.Close()
		return nil, fmt.Errorf("adding torrent: %w", err)
	}
	e.t = t
	t.SetOnWriteChunkError(func(err error) { a.storageFailed(e, err) })
	<-t.GotInfo()
	for _, f := range t.Files() {
		if !torrentfile.IsPad(f.FileInfo()) {
			e.files = append(e.files, f)
			e.payload += f.Length()
		}
	}
	a.entries[ih] = e
	a.holders.add(e)
	return e, nil
}

// release ends one fetch's use of e.
func (a *Agent) release(e *entry) {
	a.mu.Lock()
	e.users--
	e.lastUsed = time.Now()
	a.mu.Unlock()
}

// storageFailed fails the fetches of a torrent whose data cannot be written
// (disk full, read-only state directory) and drops it, so that a later fetch
// starts it afresh.
func (a *Agent) storageFailed(e *entry, err error) {
	err = fmt.Errorf("agent cannot store data in %s: %w", a.cfg.StateDir, err)
	if !e.failed.CompareAndSwap(nil, &err) {
		return
	}
	a.log.Error("dropping torrent", "torrent", e.t.InfoHash().HexString(), "err", err)
	a.drop(e)
}
