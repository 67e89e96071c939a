package agent

import (
	"log/slog"
	"net/http"
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
