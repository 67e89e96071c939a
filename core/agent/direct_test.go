package agent

import (
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/core/store"
)

// Of two fetches sharing files that start at once, at most one goes
// direct, and a fetch that goes through the engine meanwhile (between the
// direct one's check and its entry's insert) still ends it.
func TestClaimDirect(t *testing.T) {
	s, err := store.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	info, err := seedTorrent(t, t.TempDir(), 100_000).UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	layout := func() *store.Torrent {
		l, err := s.Layout(&info)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	newEntry := func(users int) *entry {
		return &entry{layout: layout(), users: users, yield: make(chan struct{})}
	}
	yielded := func(e *entry) bool {
		select {
		case <-e.yield:
			return true
		default:
			return false
		}
	}
	a := &Agent{entries: map[metainfo.Hash]*entry{}}

	c, ok := a.claimDirect(layout())
	if !ok {
		t.Fatal("first claim refused")
	}
	if _, ok := a.claimDirect(layout()); ok {
		t.Fatal("a second claim on the same files granted")
	}
	// Another fetch's entry arrives before the claimed one is inserted.
	other := newEntry(1)
	a.mu.Lock()
	a.holders.add(other)
	a.mu.Unlock()
	a.yieldShared(other)
	mine := newEntry(1)
	a.endClaim(c, mine)
	if !yielded(mine) {
		t.Error("the direct fetch did not yield to a fetch that started between its check and its insert")
	}

	// The claim is gone; an entry in use holds its files.
	if _, ok := a.claimDirect(layout()); ok {
		t.Error("claim granted while a fetch uses the files")
	}
	a.mu.Lock()
	other.users = 0
	a.mu.Unlock()
	c, ok = a.claimDirect(layout())
	if !ok {
		t.Fatal("claim refused once no fetch uses the files")
	}
	quiet := newEntry(1)
	a.endClaim(c, quiet)
	if yielded(quiet) {
		t.Error("a direct fetch nobody shares yielded")
	}
	if len(a.claims) != 0 {
		t.Errorf("%d claims left", len(a.claims))
	}
}
