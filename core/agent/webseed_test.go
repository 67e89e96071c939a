package agent

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/core/tracker"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// The webseed policy's decisions, step by step, without an engine.
func TestWebseedRule(t *testing.T) {
	g := time.Second
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	if r := newWebseedRule(t0, g, 0); !r.join || !r.leave {
		t.Errorf("empty swarm: join %v, leave %v; want the webseeds in at once, leaving peer pieces", r.join, r.leave)
	}
	for _, swarm := range []int{-1, 3} {
		if r := newWebseedRule(t0, g, swarm); r.join {
			t.Errorf("swarm %d: the webseeds joined before peers had a chance", swarm)
		}
	}

	// Peers deliver: the webseeds stay out; they stop for a grace.
	r := newWebseedRule(t0, g, 2)
	r.observe(at(500*time.Millisecond), 100, true)
	r.observe(at(1400*time.Millisecond), 200, true)
	if r.join {
		t.Error("joined while peers deliver")
	}
	r.observe(at(2300*time.Millisecond), 200, true)
	if r.join {
		t.Error("joined before a whole grace without delivery")
	}
	r.observe(at(2400*time.Millisecond), 200, true)
	if !r.join || !r.leave {
		t.Errorf("after a grace without delivery: join %v, leave %v; want joined, still leaving peer pieces", r.join, r.leave)
	}
	// Peers that have wanted pieces keep delivering nothing: after
	// leaveGrace graces, the webseeds take those pieces too...
	r.observe(at(1400*time.Millisecond+leaveGrace*g-time.Millisecond), 200, true)
	if !r.leave {
		t.Error("took peer pieces before leaveGrace graces")
	}
	r.observe(at(1400*time.Millisecond+leaveGrace*g), 200, true)
	if r.leave {
		t.Error("still leaving peer pieces after leaveGrace graces without delivery")
	}
	// ...until the peers deliver again; joined stays joined.
	r.observe(at(6*time.Second), 300, true)
	if !r.leave || !r.join {
		t.Errorf("peers deliver again: join %v, leave %v; want joined, leaving peer pieces", r.join, r.leave)
	}

	// Peers with nothing we want are fine: the webseeds join after a grace
	// but keep leaving peer pieces (there are none to leave).
	r = newWebseedRule(t0, g, 2)
	for d := 100 * time.Millisecond; d <= 10*time.Second; d += 100 * time.Millisecond {
		r.observe(at(d), 0, false)
	}
	if !r.join || !r.leave {
		t.Errorf("peers with nothing wanted: join %v, leave %v", r.join, r.leave)
	}
}

// Once the agent has left its swarms, a "completed" announce (a batch
// finishing while the agent stops) sends nothing: the tracker would list
// the stopped agent as a seeder again, and newcomers wait PeerGrace for it.
func TestNoCompletedAfterStopped(t *testing.T) {
	tr := tracker.New(0)
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", tr.ServeAnnounce)
	mux.HandleFunc("/scrape", tr.ServeScrape)
	srv := testkit.LocalServer(t, mux)
	announce := srv.URL + "/announce"

	cl, tt := addTorrent(t, engineConfig(t), seedTorrent(t, t.TempDir(), 1000))
	a := &Agent{cl: cl, web: srv.Client(), log: slog.New(slog.DiscardHandler), entries: map[metainfo.Hash]*entry{}}
	e := &entry{t: tt, trackers: []string{announce}}
	a.entries[tt.InfoHash()] = e
	seeders := func() int {
		t.Helper()
		c, err := tracker.ScrapeCounts(srv.Client(), announce, tt.InfoHash())
		if err != nil {
			t.Fatal(err)
		}
		return c.Complete
	}

	a.announceCompleted(e)
	if n := seeders(); n != 1 {
		t.Fatalf("after the completed announce the tracker knows %d seeders, want 1", n)
	}
	a.leaveSwarms(cl.PeerID(), cl.LocalPort())
	if n := seeders(); n != 0 {
		t.Fatalf("after leaving the tracker knows %d seeders, want 0", n)
	}
	a.announceCompleted(e)
	if n := seeders(); n != 0 {
		t.Errorf("a completed announce after leaving listed the agent again (%d seeders)", n)
	}
}

// When the webseeds catch up with slow peers, on simulated fetches of 100
// MiB observed every 50 ms: web and peers give each source's rate in
// bytes/s at a time since the start, webEnd when the webseeds' last request
// ends (they deliver nothing once the fetch is complete).
func TestCatchUp(t *testing.T) {
	const mib = 1 << 20
	const size = 100 * mib
	type rates func(s float64) float64
	until := func(end float64, r float64) rates {
		return func(s float64) float64 {
			if s < end {
				return r
			}
			return 0
		}
	}
	constant := func(r float64) rates { return func(float64) float64 { return r } }
	// on returns when the rule turned on (seconds since the start), or -1
	// if the fetch completed without.
	on := func(web rates, webEnd float64, peers rates) float64 {
		t0 := time.Unix(1000, 0)
		c := newCatchUp(t0, size, 7, 9)
		var webBytes, got float64
		for i := 1; got < size; i++ {
			s := float64(i) * 0.05
			webBytes += web(s) * 0.05
			got += (web(s) + peers(s)) * 0.05
			if _, _, on := c.observe(t0.Add(time.Duration(s*float64(time.Second))), 7+int64(webBytes), s < webEnd, 9+min(size, int64(got))); on {
				return s
			}
		}
		return -1
	}
	for _, tc := range []struct {
		name     string
		web      rates
		webEnd   float64
		peers    rates
		from, to float64 // -1: never on
	}{
		// Two hosts, a mirror of 25 MiB/s, uploads of 5 MiB/s: each host's
		// webseeds bring its half in 4 s, then the peer alone would take
		// another 6 s, against 8 s for the mirror alone.
		{"two hosts", until(4, 12.5*mib), 4, constant(5 * mib), 4.0, 4.3},
		// Twenty hosts: the mirror brings each host's 5 MiB slice at 1.25
		// MiB/s; the peers are slower than the mirror's 25 MiB/s but far
		// faster than its share of it (80 s for 100 MiB).
		{"twenty hosts", until(4, 1.25*mib), 4, constant(3.5 * mib), -1, -1},
		// Ten hosts, the first to start with the mirror to itself for a
		// second: its average rate (5.6 MiB/s) would turn it on at ~5 s;
		// the rate it had last (2 MiB/s) is what plain HTTP would give it.
		{"ten hosts, a fast start", func(s float64) float64 {
			switch {
			case s < 1:
				return 20 * mib
			case s < 5:
				return 2 * mib
			}
			return 0
		}, 5, constant(4 * mib), -1, -1},
		// Twenty hosts at low rates: the mirror (2.5 MiB/s in all) sends
		// each host 256 KiB at once every 2 s, then, the other hosts done
		// with it, 5 MiB in a second; the host's peers bring 1 MiB/s. Only
		// in wall time, and from the start, is the mirror's rate what
		// plain HTTP would get from it.
		{"twenty hosts, a slow mirror", func(s float64) float64 {
			switch i := int(math.Round(s / 0.05)); {
			case s < 38 && i%40 == 0:
				return 256 << 10 / 0.05
			case s >= 38 && s < 39:
				return 5 * mib
			}
			return 0
		}, 39, constant(1 * mib), -1, -1},
		// The peers stop delivering when the webseeds are done with
		// their slices: at once, without waiting for leaveGrace.
		{"peers stop", until(4, 12.5*mib), 4, until(4, 5*mib), 4.0, 4.3},
		// Peers faster than the mirror: the webseeds stay out of their
		// way.
		{"fast peers", until(2, 12.5*mib), 2, constant(20 * mib), -1, -1},
		// The webseeds wait on a slow mirror with requests in flight:
		// they are not idle, whatever their bytes say.
		{"a slow mirror's gaps", func(s float64) float64 {
			if i := int(math.Round(s / 0.05)); i%40 == 0 {
				return 1 * mib / 0.05
			}
			return 0
		}, 1000, constant(1 * mib), -1, -1},
	} {
		got := on(tc.web, tc.webEnd, tc.peers)
		if tc.from < 0 && got >= 0 || tc.from >= 0 && (got < tc.from || got > tc.to) {
			t.Errorf("%s: on at %.2fs, want %v-%v (-1: never)", tc.name, got, tc.from, tc.to)
		}
	}
	// The webseeds never delivered: no rate to compare with.
	c := newCatchUp(time.Unix(1000, 0), size, 0, 0)
	for s := 1; s < 100; s++ {
		if _, _, on := c.observe(time.Unix(1000, 0).Add(time.Duration(s)*100*time.Millisecond), 0, false, int64(s)*mib/10); on {
			t.Fatal("on without a webseed rate")
		}
	}
}

// Of the batches holding a shared file, exactly one fetches each slice from
// the mirror, whatever order each host lists the others in; the slices
// spread over the batches; and a batch alone fetches everything.
func TestFetcher(t *testing.T) {
	var ihs []metainfo.Hash
	for i := range 5 {
		var ih metainfo.Hash
		ih[0], ih[19] = byte(i+1), byte(7*i)
		ihs = append(ihs, ih)
	}
	counts := make([]int, len(ihs))
	const files, perFile = 40, 5
	for f := range files {
		key := fmt.Sprintf("content-%d", f)
		for s := range perFile {
			owners := 0
			for i, self := range ihs {
				// Each host lists the others in its own order, with itself
				// among them for the one that lists its own batch twice.
				others := append(slices.Clone(ihs[i+1:]), ihs[:i+1]...)
				if fetcher(self, others, key, s) {
					owners++
					counts[i]++
				}
			}
			if owners != 1 {
				t.Fatalf("file %d slice %d: %d batches fetch it, want 1", f, s, owners)
			}
		}
	}
	t.Logf("slices fetched per batch: %v", counts)
	for i, c := range counts {
		// 200 slices over 5 batches: 40 each on average.
		if c < 20 || c > 60 {
			t.Errorf("batch %d fetches %d of %d slices, want 20-60: %v", i, c, files*perFile, counts)
		}
	}
	if !fetcher(ihs[0], nil, "content-0", 0) {
		t.Error("a batch no other holds does not fetch its file")
	}
}
