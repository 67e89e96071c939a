package tracker

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// direct calls the tracker's handler for a request from remote and returns
// the decoded answer, with the compact peers as addresses.
func direct(t *testing.T, tr *Tracker, remote string, q url.Values) (announceResp, []netip.AddrPort) {
	t.Helper()
	req := httptest.NewRequest("GET", "/announce?"+q.Encode(), nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	tr.ServeAnnounce(rec, req)
	var r struct {
		announceResp
		Peers6 string `bencode:"peers6"`
	}
	if err := bencode.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Failure != "" {
		t.Fatal(r.Failure)
	}
	var v4 string
	if err := bencode.Unmarshal(r.Peers, &v4); err != nil {
		t.Fatal(err)
	}
	var out []netip.AddrPort
	for _, l := range []struct {
		s    string
		size int
	}{{v4, 4}, {r.Peers6, 16}} {
		if len(l.s)%(l.size+2) != 0 {
			t.Fatalf("compact list of %d bytes", len(l.s))
		}
		for i := 0; i < len(l.s); i += l.size + 2 {
			a, _ := netip.AddrFromSlice([]byte(l.s[i : i+l.size]))
			out = append(out, netip.AddrPortFrom(a, uint16(l.s[i+l.size])<<8|uint16(l.s[i+l.size+1])))
		}
	}
	return r.announceResp, out
}

// checkInvariants verifies the tracker's internal structures agree: every
// peer in its map is in the right slice at its position and once in the
// expiry list, and every swarm once in its shard's list.
func checkInvariants(t *testing.T, tr *Tracker) {
	t.Helper()
	for i := range tr.shards {
		sh := &tr.shards[i]
		sh.mu.Lock()
		n := 0
		for s := sh.byExpiry.head; s != nil; s = s.lk.next {
			n++
			if sh.swarms[s.ih] != s {
				t.Fatalf("swarm in the list but not the map")
			}
			if len(s.peers) == 0 || len(s.peers) != len(s.seeders)+len(s.leechers) {
				t.Fatalf("swarm with %d peers, %d seeders, %d leechers", len(s.peers), len(s.seeders), len(s.leechers))
			}
			m := 0
			var last time.Time
			for p := s.byExpiry.head; p != nil; p = p.lk.next {
				m++
				if s.peers[p.key] != p {
					t.Fatalf("peer in the expiry list but not the map")
				}
				if p.expires.Before(last) {
					t.Fatalf("expiry list out of order")
				}
				last = p.expires
				l := s.leechers
				if p.seeder {
					l = s.seeders
				}
				if p.pos < 0 || p.pos >= len(l) || l[p.pos].p != p || l[p.pos].key != p.key {
					t.Fatalf("peer not at its position")
				}
			}
			if m != len(s.peers) {
				t.Fatalf("expiry list has %d peers, the map %d", m, len(s.peers))
			}
		}
		if n != len(sh.swarms) {
			t.Fatalf("shard list has %d swarms, the map %d", n, len(sh.swarms))
		}
		sh.mu.Unlock()
	}
}

// Random announces (events, seeders and leechers, several addresses, ports
// and ids, time passing) against a plain model of the swarm: the counts are
// exact, the peers returned are live, distinct, never the announcer and, for
// a seeder, never a seeder, and as many as asked for when there are enough.
func TestAnnounceModel(t *testing.T) {
	tr := New(0)
	now := time.Unix(1e9, 0)
	tr.now = func() time.Time { return now }
	type entry struct {
		seeder  bool
		expires time.Time
	}
	model := map[string]map[peerKey]entry{}
	hashes := []string{strings.Repeat("\x01", 20), strings.Repeat("\x02", 20)}
	ips := []string{"127.0.0.1", "127.0.0.2", "::1"}
	ids := []string{strings.Repeat("a", 20), strings.Repeat("b", 20), strings.Repeat("c", 20)}
	events := []string{"", "", "", "started", "completed", "stopped"}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 3000 {
		if rng.IntN(20) == 0 {
			now = now.Add(time.Duration(rng.IntN(70)) * time.Second)
		}
		h := hashes[rng.IntN(len(hashes))]
		ip := netip.MustParseAddr(ips[rng.IntN(len(ips))])
		key := peerKey{netip.AddrPortFrom(ip, uint16(1+rng.IntN(3))), [20]byte([]byte(ids[rng.IntN(len(ids))]))}
		seeder := rng.IntN(2) == 0
		event := events[rng.IntN(len(events))]
		numWant := rng.IntN(12)
		left := "1"
		if seeder {
			left = "0"
		}
		q := url.Values{"info_hash": {h}, "peer_id": {string(key.id[:])}, "port": {fmt.Sprint(key.addr.Port())},
			"left": {left}, "numwant": {fmt.Sprint(numWant)}, "event": {event}}
		r, got := direct(t, tr, netip.AddrPortFrom(ip, 40000).String(), q)

		m := model[h]
		if m == nil {
			m = map[peerKey]entry{}
			model[h] = m
		}
		for k, e := range m {
			if now.After(e.expires) {
				delete(m, k)
			}
		}
		if event == "stopped" {
			delete(m, key)
		} else {
			m[key] = entry{seeder, now.Add(2 * tr.Interval())}
		}
		var complete, incomplete int64
		eligible := map[netip.AddrPort]bool{}
		pool := 0
		for k, e := range m {
			if e.seeder {
				complete++
			} else {
				incomplete++
			}
			if !seeder || !e.seeder {
				pool++
				if k.addr != key.addr && k.id != key.id {
					eligible[k.addr] = true
				}
			}
		}
		if r.Complete != complete || r.Incomplete != incomplete {
			t.Fatalf("step %d: complete %d incomplete %d, want %d and %d", step, r.Complete, r.Incomplete, complete, incomplete)
		}
		if event == "stopped" {
			numWant = 0
		}
		seen := map[netip.AddrPort]bool{}
		for _, a := range got {
			if !eligible[a] || seen[a] {
				t.Fatalf("step %d: peer %v returned (eligible %v, already %v)", step, a, eligible[a], seen[a])
			}
			seen[a] = true
		}
		if want := min(numWant, len(eligible)); len(got) > want || (pool <= 2*numWant+16 && len(got) != want) {
			t.Fatalf("step %d: %d peers returned, want %d", step, len(got), want)
		}
		checkInvariants(t, tr)
	}
}

// In a large swarm an announce gets numwant (at most 200) distinct peers
// drawn at random, and a seeder only leechers.
func TestAnnounceSample(t *testing.T) {
	tr := New(0)
	for i := range 1000 {
		left := "1"
		if i%4 == 0 {
			left = "0"
		}
		q := url.Values{"info_hash": {ih}, "peer_id": {fmt.Sprintf("%020d", i)}, "port": {"6881"}, "left": {left}, "numwant": {"0"}}
		direct(t, tr, fmt.Sprintf("10.0.%d.%d:1", i/256, i%256), q)
	}
	seeder := func(a netip.AddrPort) bool { b := a.Addr().As4(); return (int(b[2])*256+int(b[3]))%4 == 0 }
	counts := map[netip.AddrPort]int{}
	for round := range 20 {
		q := url.Values{"info_hash": {ih}, "peer_id": {fmt.Sprintf("%020d", 1)}, "port": {"6881"}, "left": {"1"}, "numwant": {"300"}}
		r, got := direct(t, tr, "10.0.0.1:1", q)
		if len(got) != 200 || r.Complete != 250 || r.Incomplete != 750 {
			t.Fatalf("round %d: %d peers, %d complete, %d incomplete; want 200, 250, 750", round, len(got), r.Complete, r.Incomplete)
		}
		for _, a := range got {
			counts[a]++
		}
		q.Set("numwant", "50")
		q.Set("peer_id", fmt.Sprintf("%020d", 4))
		q.Set("left", "0")
		_, got = direct(t, tr, "10.0.0.4:1", q)
		if len(got) != 50 {
			t.Fatalf("seeder got %d peers, want 50", len(got))
		}
		for _, a := range got {
			if seeder(a) {
				t.Fatalf("seeder sent to seeder %v", a)
			}
		}
		q.Set("left", "1") // back to leecher for the next round's counts
		direct(t, tr, "10.0.0.4:1", q)
		q.Set("left", "0")
		direct(t, tr, "10.0.0.4:1", q)
	}
	// 20 draws of 200 out of 999: a fixed subset would reach few peers.
	if len(counts) < 900 {
		t.Errorf("20 announces reached only %d of 999 peers", len(counts))
	}
	checkInvariants(t, tr)
}

// A swarm nobody announces to any more is forgotten (with its completed
// count) once its peers expire, on the next request to its shard.
func TestSwarmExpiry(t *testing.T) {
	tr := New(0)
	now := time.Unix(1e9, 0)
	tr.now = func() time.Time { return now }
	old := strings.Repeat("\x11", 20)
	// Another info hash in the same shard.
	var other string
	for i := 0; other == ""; i++ {
		if h := fmt.Sprintf("%020d", i); tr.shard(h) == tr.shard(old) {
			other = h
		}
	}
	q := url.Values{"info_hash": {old}, "peer_id": {ih}, "port": {"1"}, "left": {"0"}, "event": {"completed"}}
	direct(t, tr, "127.0.0.1:1", q)
	now = now.Add(2*tr.Interval() + time.Second)
	q.Set("info_hash", other)
	direct(t, tr, "127.0.0.1:1", q)
	sh := tr.shard(old)
	if _, ok := sh.swarms[old]; ok || len(sh.swarms) != 1 {
		t.Errorf("expired swarm kept: %d swarms in the shard", len(sh.swarms))
	}
	checkInvariants(t, tr)
}
