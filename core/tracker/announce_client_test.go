package tracker

import (
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// Announce against the embedded tracker: the first peer of a torrent hears
// of nobody, the second of the first, the first (announcing again, no
// event) of the second; a torrent of its own is apart.
func TestAnnounceClient(t *testing.T) {
	mux := http.NewServeMux()
	tr := New(0)
	mux.HandleFunc("/announce", tr.ServeAnnounce)
	mux.HandleFunc("/scrape", tr.ServeScrape)
	srv := testkit.LocalServer(t, mux)
	announce := srv.URL + "/announce"
	var ih, other, a, b [20]byte
	ih[0], other[0] = 1, 2
	copy(a[:], AgentIDPrefix+"aaaaaaaaaaaa")
	copy(b[:], AgentIDPrefix+"bbbbbbbbbbbb")

	peers, err := Announce(srv.Client(), announce, ih, a, 7001, "started", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 0 {
		t.Errorf("first announce got %v, want nobody", peers)
	}
	peers, err = Announce(srv.Client(), announce, ih, b, 7002, "started", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("127.0.0.1:7001"); len(peers) != 1 || peers[0] != want {
		t.Errorf("second announce got %v, want [%v]", peers, want)
	}
	peers, err = Announce(srv.Client(), announce, ih, a, 7001, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("127.0.0.1:7002"); len(peers) != 1 || peers[0] != want {
		t.Errorf("first peer announcing again got %v, want [%v]", peers, want)
	}
	if n, err := Scrape(srv.Client(), announce, ih); err != nil || n != 2 {
		t.Errorf("scrape: %d, %v; want 2 peers", n, err)
	}
	// Both are agents, so a new torrent of one of them may find related
	// peers; what matters here is that neither announcer hears of itself.
	peers, err = Announce(srv.Client(), announce, other, a, 7001, "started", 5)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(peers, netip.MustParseAddrPort("127.0.0.1:7001")) {
		t.Errorf("announcer heard of itself: %v", peers)
	}
	// stopped takes b out: a hears of nobody.
	if _, err := Announce(srv.Client(), announce, ih, b, 7002, "stopped", 0); err != nil {
		t.Fatal(err)
	}
	if peers, err := Announce(srv.Client(), announce, ih, a, 7001, "", 1000); err != nil || len(peers) != 0 {
		t.Errorf("after b stopped: %v, %v; want nobody", peers, err)
	}
}

// What Announce sends: left as given, no event parameter for "", compact;
// and what it makes of the answers other trackers give: a dictionary peer
// list, peers6, a failure reason, an error status, a body that is not
// bencode.
func TestAnnounceClientForms(t *testing.T) {
	var mu sync.Mutex
	var queries []url.Values
	body := map[string]string{
		"/dict":    "d8:intervali60e5:peersld2:ip8:10.0.0.14:porti6881eed2:ip3:::14:porti6882eed2:ip7:garbage4:porti1eeee",
		"/both":    "d8:intervali60e5:peers6:\x0a\x00\x00\x02\x1a\xe16:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe2e",
		"/failure": "d14:failure reason9:not todaye",
		"/garbage": "<html>",
	}
	srv := testkit.LocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Query())
		mu.Unlock()
		if r.URL.Path == "/500" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(body[r.URL.Path]))
	}))
	var ih, id [20]byte
	ih[3], id[4] = 9, 8
	peers, err := Announce(srv.Client(), srv.URL+"/dict", ih, id, 6881, "", 12345)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:6881"), netip.MustParseAddrPort("[::1]:6882")}
	if !slices.Equal(peers, want) {
		t.Errorf("dictionary list: %v, want %v (the unparsable address left out)", peers, want)
	}
	mu.Lock()
	q := queries[0]
	mu.Unlock()
	if _, ok := q["event"]; ok {
		t.Errorf("event %q sent for no event", q.Get("event"))
	}
	if q.Get("left") != "12345" || q.Get("compact") != "1" || q.Get("port") != "6881" || q.Get("info_hash") != string(ih[:]) || q.Get("peer_id") != string(id[:]) {
		t.Errorf("query %v", q)
	}
	peers, err = Announce(srv.Client(), srv.URL+"/both", ih, id, 6881, "started", 0)
	if err != nil {
		t.Fatal(err)
	}
	want = []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:6881"), netip.MustParseAddrPort("[2001:db8::1]:6882")}
	if !slices.Equal(peers, want) {
		t.Errorf("peers and peers6: %v, want %v", peers, want)
	}
	mu.Lock()
	if ev := queries[1].Get("event"); ev != "started" {
		t.Errorf("event %q, want started", ev)
	}
	mu.Unlock()
	for path, want := range map[string]string{"/failure": "not today", "/500": "500", "/garbage": "announce"} {
		if _, err := Announce(srv.Client(), srv.URL+path, ih, id, 6881, "", 0); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", path, err, want)
		}
	}
	if _, err := Announce(srv.Client(), "udp://tracker.example:6969/announce", ih, id, 6881, "", 0); err == nil {
		t.Error("no error for a UDP tracker")
	}
}

func TestDecodeCompact(t *testing.T) {
	v4 := "\x7f\x00\x00\x01\x1b\x59" + "\x0a\x01\x02\x03\xff\xff" + "\x01\x02\x03" // a partial entry at the end
	got := decodeCompact(v4, 4)
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7001"), netip.MustParseAddrPort("10.1.2.3:65535")}
	if !slices.Equal(got, want) {
		t.Errorf("IPv4: %v, want %v", got, want)
	}
	mapped := "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\xa8\x00\x01\x00\x50"
	v6 := "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1f\x90" + mapped
	got = decodeCompact(v6, 16)
	want = []netip.AddrPort{netip.MustParseAddrPort("[::1]:8080"), netip.MustParseAddrPort("192.168.0.1:80")}
	if !slices.Equal(got, want) {
		t.Errorf("IPv6: %v, want %v (the IPv4-mapped one unmapped)", got, want)
	}
	if got := decodeCompact("", 4); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := decodeCompact("\x01\x02\x03\x04\x05", 4); len(got) != 0 {
		t.Errorf("short: %v", got)
	}
}
