package tracker

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// clientFrom returns an HTTP client whose connections come from local, an
// address of the loopback network (127.0.0.0/8), so that the tracker sees
// another host than 127.0.0.1.
func clientFrom(t *testing.T, local string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", "127.0.0.1:1") // only to see that local can be bound
	if err == nil {
		c.Close()
	} else if strings.Contains(err.Error(), "assign requested address") {
		t.Skipf("cannot bind %s: %v", local, err)
	}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// rawAnnounce sends an announce with the client c and returns the body.
func rawAnnounce(t *testing.T, c *http.Client, base string, q url.Values) []byte {
	t.Helper()
	q.Set("info_hash", ih)
	_, b := testkit.Get(t, c, base+"/announce?"+q.Encode())
	var r announceResp
	if err := bencode.Unmarshal(b, &r); err != nil || r.Failure != "" {
		t.Fatalf("announce %v: %q, %v", q, b, err)
	}
	return b
}

// An attacker on another host announces the victim's peer id (with the
// victim's port, and an "ip" parameter naming the victim's address): the
// victim stays in the swarm, at its own address, and newcomers are still
// sent to it; the attacker's "stopped" with the victim's id removes nothing
// but the attacker's own entry; the victim's own "stopped" removes it.
func TestSpoofedAnnounce(t *testing.T) {
	srv := newServer(t, New(0))
	attacker := clientFrom(t, "127.0.0.2")
	victim := strings.Repeat("v", 20)
	newcomer := strings.Repeat("n", 20)

	announce(t, srv.URL, victim, 1001, 0, "&event=started")
	for _, q := range []url.Values{
		{"peer_id": {victim}, "port": {"2222"}, "left": {"0"}, "event": {"started"}},
		{"peer_id": {victim}, "port": {"1001"}, "left": {"0"}, "ip": {"127.0.0.1"}},
		{"peer_id": {victim}, "port": {"2222"}, "left": {"0"}, "ip": {"127.0.0.1"}, "event": {"completed"}},
	} {
		rawAnnounce(t, attacker, srv.URL, q)
	}
	r := announce(t, srv.URL, newcomer, 1003, 100, "&event=started")
	got := compactPeers(t, r.Peers)
	slices.Sort(got)
	want := []string{"127.0.0.1:1001", "127.0.0.2:1001", "127.0.0.2:2222"}
	if !slices.Equal(got, want) {
		t.Errorf("newcomer got %v, want %v (the victim and the attacker's own entries)", got, want)
	}

	// The attacker stops "as" the victim, every way it can.
	for _, q := range []url.Values{
		{"peer_id": {victim}, "port": {"1001"}, "left": {"0"}, "event": {"stopped"}},
		{"peer_id": {victim}, "port": {"1001"}, "left": {"0"}, "ip": {"127.0.0.1"}, "event": {"stopped"}},
		{"peer_id": {victim}, "port": {"2222"}, "left": {"0"}, "event": {"stopped"}},
	} {
		rawAnnounce(t, attacker, srv.URL, q)
	}
	r = announce(t, srv.URL, newcomer, 1003, 100, "")
	if got := compactPeers(t, r.Peers); !slices.Equal(got, []string{"127.0.0.1:1001"}) {
		t.Errorf("after the attacker's stops the newcomer got %v, want [127.0.0.1:1001]", got)
	}
	if r.Complete != 1 || r.Incomplete != 1 {
		t.Errorf("complete %d incomplete %d, want 1 and 1", r.Complete, r.Incomplete)
	}

	// The same id and address but another port is another entry, too.
	announce(t, srv.URL, victim, 1009, 0, "&event=stopped")
	r = announce(t, srv.URL, newcomer, 1003, 100, "")
	if got := compactPeers(t, r.Peers); !slices.Equal(got, []string{"127.0.0.1:1001"}) {
		t.Errorf("after a stop on another port the newcomer got %v, want [127.0.0.1:1001]", got)
	}

	// The victim's own stop removes it.
	announce(t, srv.URL, victim, 1001, 0, "&event=stopped")
	r = announce(t, srv.URL, newcomer, 1003, 100, "")
	if got := compactPeers(t, r.Peers); len(got) != 0 || r.Complete != 0 {
		t.Errorf("after the victim's stop: peers %v, complete %d; want none", got, r.Complete)
	}
}

// No response carries a peer id: not the dictionary model (BEP 3), not the
// compact one.
func TestNoPeerIDs(t *testing.T) {
	srv := newServer(t, New(0))
	ids := []string{strings.Repeat("A", 20), strings.Repeat("B", 20), strings.Repeat("C", 20)}
	for i, id := range ids {
		announce(t, srv.URL, id, 3001+i, int64(i), "")
	}
	for _, compact := range []string{"0", "1"} {
		q := url.Values{"peer_id": {ids[0]}, "port": {"3001"}, "left": {"5"}, "compact": {compact}}
		b := rawAnnounce(t, http.DefaultClient, srv.URL, q)
		for _, id := range ids[1:] {
			if bytes.Contains(b, []byte(id)) {
				t.Errorf("compact=%s response %q holds peer id %q", compact, b, id)
			}
		}
		if bytes.Contains(b, []byte("peer id")) {
			t.Errorf("compact=%s response %q has a \"peer id\" key", compact, b)
		}
		if compact == "0" {
			var r struct {
				Peers []map[string]any `bencode:"peers"`
			}
			if err := bencode.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Peers) != 2 {
				t.Errorf("dictionary peers %v, want 2", r.Peers)
			}
		}
	}
}

// A scrape must name the torrents it asks about, and not too many of them;
// naming them works as before (the agent's seeder count).
func TestScrapeRefusedWithoutInfoHash(t *testing.T) {
	srv := newServer(t, New(0))
	announce(t, srv.URL, strings.Repeat("s", 20), 2001, 0, "")
	var r struct {
		Failure string         `bencode:"failure reason"`
		Files   map[string]any `bencode:"files"`
	}
	get(t, srv.URL+"/scrape", &r)
	if r.Failure == "" || len(r.Files) != 0 {
		t.Errorf("scrape without info_hash = %+v, want a failure and no files", r)
	}
	many := url.Values{}
	for i := range MaxScrape + 1 {
		many.Add("info_hash", fmt.Sprintf("%020d", i))
	}
	r.Failure, r.Files = "", nil
	get(t, srv.URL+"/scrape?"+many.Encode(), &r)
	if r.Failure == "" || len(r.Files) != 0 {
		t.Errorf("scrape of %d info hashes = %+v, want a failure", MaxScrape+1, r)
	}
	many.Del("info_hash")
	many.Add("info_hash", ih)
	for i := range MaxScrape - 1 {
		many.Add("info_hash", fmt.Sprintf("%020d", i))
	}
	var sr scrapeResp
	get(t, srv.URL+"/scrape?"+many.Encode(), &sr)
	if len(sr.Files) != MaxScrape || sr.Files[ih].Complete != 1 {
		t.Errorf("scrape of %d info hashes: %d files, %+v for the known one", MaxScrape, len(sr.Files), sr.Files[ih])
	}
}
