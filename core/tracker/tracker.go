// Package tracker is a small embedded HTTP BitTorrent tracker: BEP 3
// announce with BEP 23 compact peer lists (and BEP 7 "peers6"), and BEP 48
// scrape. State is in memory; a peer that stops announcing is forgotten
// after two announce intervals.
package tracker

import (
	"encoding/binary"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// DefaultInterval is the announce interval when none is configured.
const DefaultInterval = 60 * time.Second

// MinInterval is the smallest announce interval a tracker will advertise.
const MinInterval = 10 * time.Second

const (
	defaultNumWant = 50
	maxNumWant     = 200
)

// Tracker keeps the swarms and serves announce and scrape requests. It is
// safe for concurrent use.
type Tracker struct {
	interval time.Duration
	now      func() time.Time

	mu        sync.Mutex
	swarms    map[string]*swarm // by 20-byte info hash
	lastSweep time.Time
}

type swarm struct {
	peers      map[string]*peer // by peer id
	downloaded int64
}

type peer struct {
	addr    netip.AddrPort
	id      string
	seeder  bool
	expires time.Time
}

// New returns a tracker that asks peers to announce every interval
// (DefaultInterval if zero, at least MinInterval).
func New(interval time.Duration) *Tracker {
	if interval == 0 {
		interval = DefaultInterval
	}
	interval = max(interval, MinInterval)
	return &Tracker{interval: interval, now: time.Now, swarms: make(map[string]*swarm)}
}

// Interval returns the announce interval the tracker advertises.
func (t *Tracker) Interval() time.Duration { return t.interval }

func fail(w http.ResponseWriter, reason string) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	b, _ := bencode.Marshal(map[string]any{"failure reason": reason})
	w.Write(b)
}

func write(w http.ResponseWriter, v any) {
	b, err := bencode.Marshal(v)
	if err != nil {
		fail(w, "encoding response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// remoteAddr is the announcing peer's IP address, from the connection.
func remoteAddr(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// ServeAnnounce answers a BEP 3 announce request.
func (t *Tracker) ServeAnnounce(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ih, id := q.Get("info_hash"), q.Get("peer_id")
	if len(ih) != 20 {
		fail(w, "info_hash must be 20 bytes")
		return
	}
	if len(id) != 20 {
		fail(w, "peer_id must be 20 bytes")
		return
	}
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil || port == 0 {
		fail(w, "port must be a number from 1 to 65535")
		return
	}
	left := int64(-1)
	if s := q.Get("left"); s != "" {
		if left, err = strconv.ParseInt(s, 10, 64); err != nil || left < 0 {
			fail(w, "left must be a non-negative number")
			return
		}
	}
	numWant := defaultNumWant
	if s := q.Get("numwant"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			fail(w, "numwant must be a number")
			return
		}
		if n >= 0 {
			numWant = min(n, maxNumWant)
		}
	}
	ip, ok := remoteAddr(r)
	if !ok {
		fail(w, "cannot tell the peer's address")
		return
	}
	event := q.Get("event")
	compact := q.Get("compact") != "0"

	now := t.now()
	t.mu.Lock()
	t.sweepLocked(now)
	s := t.swarms[ih]
	if s != nil {
		s.prune(now)
	}
	if s == nil {
		s = &swarm{peers: make(map[string]*peer)}
		t.swarms[ih] = s
	}
	if event == "stopped" {
		delete(s.peers, id)
	} else {
		p := s.peers[id]
		if p == nil {
			p = &peer{id: id}
			s.peers[id] = p
		}
		if event == "completed" && !p.seeder {
			s.downloaded++
		}
		p.addr = netip.AddrPortFrom(ip, uint16(port))
		p.seeder = left == 0
		p.expires = now.Add(2 * t.interval)
	}
	complete, incomplete := s.counts()
	var list []*peer
	if event != "stopped" {
		for pid, p := range s.peers { // map order is random: a random subset
			if len(list) >= numWant {
				break
			}
			if pid == id || p.addr == netip.AddrPortFrom(ip, uint16(port)) {
				continue // never the announcer itself
			}
			// A seeder gets nothing from other seeders.
			if left == 0 && p.seeder {
				continue
			}
			list = append(list, p)
		}
	}
	if len(s.peers) == 0 {
		delete(t.swarms, ih)
	}
	t.mu.Unlock()

	resp := map[string]any{
		"interval":     int64(t.interval / time.Second),
		"min interval": int64(MinInterval / time.Second),
		"complete":     complete,
		"incomplete":   incomplete,
	}
	if compact {
		var v4, v6 []byte
		for _, p := range list {
			if p.addr.Addr().Is4() {
				v4 = append(v4, p.addr.Addr().AsSlice()...)
				v4 = binary.BigEndian.AppendUint16(v4, p.addr.Port())
			} else {
				v6 = append(v6, p.addr.Addr().AsSlice()...)
				v6 = binary.BigEndian.AppendUint16(v6, p.addr.Port())
			}
		}
		resp["peers"] = string(v4)
		if len(v6) > 0 {
			resp["peers6"] = string(v6)
		}
	} else {
		peers := make([]map[string]any, 0, len(list))
		for _, p := range list {
			peers = append(peers, map[string]any{
				"peer id": p.id,
				"ip":      p.addr.Addr().String(),
				"port":    int64(p.addr.Port()),
			})
		}
		resp["peers"] = peers
	}
	write(w, resp)
}

func (s *swarm) counts() (complete, incomplete int64) {
	for _, p := range s.peers {
		if p.seeder {
			complete++
		} else {
			incomplete++
		}
	}
	return complete, incomplete
}

// sweepLocked forgets expired peers and empty swarms, at most twice per
// interval. A swarm's completed count is forgotten with its last peer.
func (t *Tracker) sweepLocked(now time.Time) {
	if now.Sub(t.lastSweep) < t.interval/2 {
		return
	}
	t.lastSweep = now
	for ih, s := range t.swarms {
		s.prune(now)
		if len(s.peers) == 0 {
			delete(t.swarms, ih)
		}
	}
}

// prune forgets the swarm's expired peers.
func (s *swarm) prune(now time.Time) {
	for id, p := range s.peers {
		if now.After(p.expires) {
			delete(s.peers, id)
		}
	}
}

// ServeScrape answers a BEP 48 scrape request for the info_hash parameters
// given, or for every known torrent when there are none.
func (t *Tracker) ServeScrape(w http.ResponseWriter, r *http.Request) {
	hashes := r.URL.Query()["info_hash"]
	for _, ih := range hashes {
		if len(ih) != 20 {
			fail(w, "info_hash must be 20 bytes")
			return
		}
	}
	files := make(map[string]any)
	now := t.now()
	t.mu.Lock()
	t.sweepLocked(now)
	if len(hashes) == 0 {
		for ih := range t.swarms {
			hashes = append(hashes, ih)
		}
	}
	for _, ih := range hashes {
		var complete, incomplete, downloaded int64
		if s := t.swarms[ih]; s != nil {
			s.prune(now)
			complete, incomplete = s.counts()
			downloaded = s.downloaded
		}
		files[ih] = map[string]any{"complete": complete, "incomplete": incomplete, "downloaded": downloaded}
	}
	t.mu.Unlock()
	write(w, map[string]any{"files": files})
}
