// Package tracker is a small embedded HTTP BitTorrent tracker: BEP 3
// announce with BEP 23 compact peer lists (and BEP 7 "peers6"), and BEP 48
// scrape. State is in memory; a peer that stops announcing is forgotten
// after two announce intervals.
//
// A peer is what the tracker saw: the address the announce came from, the
// port it announced and its peer id, together. An announce (or a "stopped")
// with another peer's id from another address makes or removes an entry of
// its own and leaves the other peer's alone; there is no "ip" parameter, and
// peer ids are never handed out. An announce costs time in proportion to the
// number of peers it asks for, not to the size of the swarm, and locks only
// one shard of the swarms.
package tracker

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// DefaultInterval is the announce interval when none is configured.
const DefaultInterval = 60 * time.Second

// MinInterval is the smallest announce interval a tracker will advertise.
const MinInterval = 10 * time.Second

// MaxScrape is the most info hashes one scrape request may name. A scrape
// that names none is refused: the tracker does not list its swarms.
const MaxScrape = 64

const (
	defaultNumWant = 50
	maxNumWant     = 200
	numShards      = 64
	// maxRelated bounds the related torrents an announce draws peers from.
	maxRelated = 16
)

// AgentIDPrefix begins the peer id of every pkgtorrent agent. Only agents
// are handed out as peers of related torrents: a stock client of another
// batch would refuse the handshake.
const AgentIDPrefix = "-PK0001-"

// RelatedKey is the scrape field (per torrent) counting the peers of its
// related torrents (see SetRelated).
const RelatedKey = "x-pkgtorrent-related"

// Tracker keeps the swarms and serves announce and scrape requests. It is
// safe for concurrent use.
type Tracker struct {
	interval time.Duration
	now      func() time.Time
	seed     maphash.Seed
	shards   [numShards]shard
	related  atomic.Pointer[func(ih [20]byte) [][20]byte]
}

// SetRelated sets f, which names the torrents that share content with a
// torrent (for the service: the batches that share files with it; nil:
// none). An announce of a peer still downloading is then answered, when
// its own swarm has fewer peers than it wants, with agents (AgentIDPrefix)
// of at most 16 of those torrents too, and a scrape counts their peers
// under RelatedKey.
func (t *Tracker) SetRelated(f func(ih [20]byte) [][20]byte) { t.related.Store(&f) }

// eachRelated calls f, under its shard's lock and with its expired peers
// forgotten, with the swarm of each torrent related to ih that has one,
// until f returns false.
func (t *Tracker) eachRelated(ih string, now time.Time, f func(*swarm) bool) {
	for _, rih := range t.relatedTo(ih) {
		rsh := t.shard(rih)
		rsh.mu.Lock()
		more := true
		if rs := rsh.swarms[rih]; rs != nil {
			rs.expire(now)
			more = f(rs)
		}
		rsh.mu.Unlock()
		if !more {
			return
		}
	}
}

// relatedTo returns the torrents related to ih, at most maxRelated.
func (t *Tracker) relatedTo(ih string) []string {
	f := t.related.Load()
	if f == nil || *f == nil {
		return nil
	}
	rel := (*f)([20]byte([]byte(ih)))
	out := make([]string, 0, min(len(rel), maxRelated))
	for _, r := range rel {
		if len(out) == maxRelated {
			break
		}
		if string(r[:]) != ih {
			out = append(out, string(r[:]))
		}
	}
	return out
}

// shard holds the swarms whose info hash falls in it, under one lock, with
// the swarms in a list ordered by their last announce (oldest first) so that
// the swarms nobody announces to any more are forgotten a few at a time.
type shard struct {
	mu       sync.Mutex
	swarms   map[string]*swarm // by 20-byte info hash
	byExpiry expiryList[swarm, *swarm]
}

// swarm is the peers of one torrent. Seeders and leechers are kept in two
// slices (each peer knows its position) for counting and sampling in
// constant time, and in a list ordered by expiry (oldest first) for
// forgetting them a few at a time.
type swarm struct {
	ih         string
	peers      map[peerKey]*peer
	seeders    []slot
	leechers   []slot
	byExpiry   expiryList[peer, *peer]
	downloaded int64

	expires time.Time    // of the last peer to announce
	lk      links[swarm] // in the shard's list
}

func (s *swarm) listLinks() *links[swarm] { return &s.lk }

// peerKey identifies a peer: the address it announced from, with the port it
// announced, and its peer id.
type peerKey struct {
	addr netip.AddrPort
	id   [20]byte
}

// slot is a peer in the seeders or leechers slice, with its key alongside
// so that sampling reads the slice alone.
type slot struct {
	key peerKey
	p   *peer
}

type peer struct {
	key     peerKey
	seeder  bool
	pos     int // in seeders or leechers
	expires time.Time
	lk      links[peer] // in the swarm's expiry list
}

func (p *peer) listLinks() *links[peer] { return &p.lk }

// links are an element's place in an expiryList.
type links[T any] struct{ prev, next *T }

// expiryList is a doubly linked list through its elements' links, ordered
// by expiry (oldest first): the peers of a swarm, the swarms of a shard.
type expiryList[T any, P interface {
	*T
	listLinks() *links[T]
}] struct{ head, tail *T }

// moveToBack puts e, whose expiry is now the latest, at the back.
func (l *expiryList[T, P]) moveToBack(e *T) {
	if l.tail == e {
		return
	}
	l.unlink(e)
	P(e).listLinks().prev = l.tail
	if l.tail != nil {
		P(l.tail).listLinks().next = e
	} else {
		l.head = e
	}
	l.tail = e
}

// unlink takes e out of the list (if it is in it).
func (l *expiryList[T, P]) unlink(e *T) {
	ln := P(e).listLinks()
	if ln.prev != nil {
		P(ln.prev).listLinks().next = ln.next
	} else if l.head == e {
		l.head = ln.next
	}
	if ln.next != nil {
		P(ln.next).listLinks().prev = ln.prev
	} else if l.tail == e {
		l.tail = ln.prev
	}
	ln.prev, ln.next = nil, nil
}

// New returns a tracker that asks peers to announce every interval
// (DefaultInterval if zero, at least MinInterval).
func New(interval time.Duration) *Tracker {
	if interval == 0 {
		interval = DefaultInterval
	}
	interval = max(interval, MinInterval)
	t := &Tracker{interval: interval, now: time.Now, seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].swarms = make(map[string]*swarm)
	}
	return t
}

// Interval returns the announce interval the tracker advertises.
func (t *Tracker) Interval() time.Duration { return t.interval }

func (t *Tracker) shard(ih string) *shard {
	return &t.shards[maphash.String(t.seed, ih)%numShards]
}

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

// ServeAnnounce answers a BEP 3 announce request. The peer's address is the
// one the request came from; an "ip" parameter is ignored.
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
	key := peerKey{addr: netip.AddrPortFrom(ip, uint16(port)), id: [20]byte([]byte(id))}

	now := t.now()
	sh := t.shard(ih)
	sh.mu.Lock()
	sh.expire(now)
	s := sh.swarms[ih]
	if s != nil {
		s.expire(now)
	}
	var list []netip.AddrPort
	var complete, incomplete int64
	if event == "stopped" {
		if s != nil {
			if p := s.peers[key]; p != nil {
				s.remove(p)
			}
		}
	} else {
		if s == nil {
			s = &swarm{ih: ih, peers: make(map[peerKey]*peer)}
			sh.swarms[ih] = s
		}
		p := s.peers[key]
		if p == nil {
			p = &peer{key: key, pos: -1}
			s.peers[key] = p
		}
		if event == "completed" && !p.seeder {
			s.downloaded++
		}
		s.set(p, left == 0)
		s.touch(p, now.Add(2*t.interval))
		sh.touch(s, p.expires)
		list = s.sample(key, numWant, nil, false)
	}
	wantRelated := event != "stopped" && left != 0 && len(list) < numWant
	if s != nil {
		complete, incomplete = int64(len(s.seeders)), int64(len(s.leechers))
		if len(s.peers) == 0 {
			sh.drop(s)
		}
	}
	sh.mu.Unlock()
	if wantRelated {
		seen := make(map[netip.AddrPort]bool, len(list))
		for _, a := range list {
			seen[a] = true
		}
		t.eachRelated(ih, now, func(rs *swarm) bool {
			list = append(list, rs.sample(key, numWant-len(list), seen, true)...)
			return len(list) < numWant
		})
	}

	resp := map[string]any{
		"interval":     int64(t.interval / time.Second),
		"min interval": int64(MinInterval / time.Second),
		"complete":     complete,
		"incomplete":   incomplete,
	}
	if compact {
		var v4, v6 []byte
		for _, a := range list {
			if a.Addr().Is4() {
				v4 = append(v4, a.Addr().AsSlice()...)
				v4 = binary.BigEndian.AppendUint16(v4, a.Port())
			} else {
				v6 = append(v6, a.Addr().AsSlice()...)
				v6 = binary.BigEndian.AppendUint16(v6, a.Port())
			}
		}
		resp["peers"] = string(v4)
		if len(v6) > 0 {
			resp["peers6"] = string(v6)
		}
	} else {
		// The dictionary model without "peer id": ids are not handed out.
		peers := make([]map[string]any, 0, len(list))
		for _, a := range list {
			peers = append(peers, map[string]any{
				"ip":   a.Addr().String(),
				"port": int64(a.Port()),
			})
		}
		resp["peers"] = peers
	}
	write(w, resp)
}

// set puts p among the seeders or the leechers.
func (s *swarm) set(p *peer, seeder bool) {
	if p.pos >= 0 {
		if p.seeder == seeder {
			return
		}
		s.unlist(p)
	}
	p.seeder = seeder
	if seeder {
		p.pos = len(s.seeders)
		s.seeders = append(s.seeders, slot{p.key, p})
	} else {
		p.pos = len(s.leechers)
		s.leechers = append(s.leechers, slot{p.key, p})
	}
}

// unlist takes p out of the seeders or leechers slice, moving the last one
// into its place.
func (s *swarm) unlist(p *peer) {
	l := &s.leechers
	if p.seeder {
		l = &s.seeders
	}
	last := len(*l) - 1
	(*l)[p.pos] = (*l)[last]
	(*l)[p.pos].p.pos = p.pos
	(*l)[last] = slot{}
	*l = (*l)[:last]
	p.pos = -1
}

// touch sets p's expiry and moves it to the end of the expiry list.
func (s *swarm) touch(p *peer, expires time.Time) {
	p.expires = expires
	s.byExpiry.moveToBack(p)
}

// remove forgets p.
func (s *swarm) remove(p *peer) {
	s.byExpiry.unlink(p)
	s.unlist(p)
	delete(s.peers, p.key)
}

// expire forgets the swarm's peers that have expired: the cost is in
// proportion to the number forgotten.
func (s *swarm) expire(now time.Time) {
	for s.byExpiry.head != nil && now.After(s.byExpiry.head.expires) {
		s.remove(s.byExpiry.head)
	}
}

// sample returns up to n distinct addresses of peers drawn at random from
// the swarm, never the announcer's own (self), none in seen (which it
// extends; nil: a new set) and, for a seeder of the swarm, no other seeder;
// with agents, agents only (AgentIDPrefix). It does a partial Fisher-Yates
// shuffle over the seeders then the leechers without moving them, so its
// cost is in proportion to n.
func (s *swarm) sample(self peerKey, n int, seen map[netip.AddrPort]bool, agents bool) []netip.AddrPort {
	var pool int
	var seeder bool
	if p := s.peers[self]; p != nil {
		seeder = p.seeder
	}
	if seeder {
		pool = len(s.leechers) // a seeder gets nothing from other seeders
	} else {
		pool = len(s.seeders) + len(s.leechers)
	}
	at := func(i int) *slot {
		if seeder {
			return &s.leechers[i]
		}
		if i < len(s.seeders) {
			return &s.seeders[i]
		}
		return &s.leechers[i-len(s.seeders)]
	}
	if n == 0 || pool == 0 {
		return nil
	}
	out := make([]netip.AddrPort, 0, min(n, pool))
	if seen == nil {
		seen = make(map[netip.AddrPort]bool, min(n, pool))
	}
	// Entries skipped (the announcer's own, under its address or its id,
	// and the same address under several ids) are few in a real swarm;
	// bound the draws anyway.
	draws := min(pool, 2*n+16)
	swapped := make(map[int]int, draws) // the shuffle's moved positions
	pos := func(i int) int {
		if j, ok := swapped[i]; ok {
			return j
		}
		return i
	}
	for i := 0; i < draws && len(out) < n; i++ {
		j := i + rand.IntN(pool-i)
		pi, pj := pos(i), pos(j)
		swapped[j] = pi
		swapped[i] = pj
		p := at(pj)
		if p.key.addr == self.addr || p.key.id == self.id || seen[p.key.addr] ||
			agents && !bytes.HasPrefix(p.key.id[:], []byte(AgentIDPrefix)) {
			continue
		}
		seen[p.key.addr] = true
		out = append(out, p.key.addr)
	}
	return out
}

// touch records that s had an announce whose peer expires at expires and
// moves it to the end of the shard's list.
func (sh *shard) touch(s *swarm, expires time.Time) {
	s.expires = expires
	sh.byExpiry.moveToBack(s)
}

// drop forgets s. A swarm's completed count is forgotten with its last peer.
func (sh *shard) drop(s *swarm) {
	sh.byExpiry.unlink(s)
	delete(sh.swarms, s.ih)
}

// expire forgets the shard's swarms whose every peer has expired (those
// with no announce for two intervals): the cost is in proportion to the
// number forgotten.
func (sh *shard) expire(now time.Time) {
	for sh.byExpiry.head != nil && now.After(sh.byExpiry.head.expires) {
		sh.drop(sh.byExpiry.head)
	}
}

// ServeScrape answers a BEP 48 scrape request for the info_hash parameters
// given: at least one and at most MaxScrape.
func (t *Tracker) ServeScrape(w http.ResponseWriter, r *http.Request) {
	hashes := r.URL.Query()["info_hash"]
	if len(hashes) == 0 {
		fail(w, "scrape needs info_hash: this tracker does not list its torrents")
		return
	}
	if len(hashes) > MaxScrape {
		fail(w, "scrape names more than "+strconv.Itoa(MaxScrape)+" info_hash")
		return
	}
	for _, ih := range hashes {
		if len(ih) != 20 {
			fail(w, "info_hash must be 20 bytes")
			return
		}
	}
	files := make(map[string]any, len(hashes))
	now := t.now()
	for _, ih := range hashes {
		var complete, incomplete, downloaded int64
		sh := t.shard(ih)
		sh.mu.Lock()
		sh.expire(now)
		if s := sh.swarms[ih]; s != nil {
			s.expire(now)
			complete, incomplete = int64(len(s.seeders)), int64(len(s.leechers))
			downloaded = s.downloaded
			if len(s.peers) == 0 {
				sh.drop(s)
			}
		}
		sh.mu.Unlock()
		var related int64
		t.eachRelated(ih, now, func(rs *swarm) bool {
			related += int64(len(rs.seeders) + len(rs.leechers))
			return true
		})
		f := map[string]any{"complete": complete, "incomplete": incomplete, "downloaded": downloaded}
		if related > 0 {
			f[RelatedKey] = related
		}
		files[ih] = f
	}
	write(w, map[string]any{"files": files})
}
