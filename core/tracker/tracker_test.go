package tracker

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

type announceResp struct {
	Failure    string        `bencode:"failure reason"`
	Interval   int64         `bencode:"interval"`
	Complete   int64         `bencode:"complete"`
	Incomplete int64         `bencode:"incomplete"`
	Peers      bencode.Bytes `bencode:"peers"`
}

func newServer(t *testing.T, tr *Tracker) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", tr.ServeAnnounce)
	mux.HandleFunc("/scrape", tr.ServeScrape)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string, v any) {
	t.Helper()
	_, b := testkit.Get(t, nil, u)
	if err := bencode.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
}

var ih = strings.Repeat("\xaa", 20)

func announce(t *testing.T, base, peerID string, port int, left int64, extra string) announceResp {
	t.Helper()
	q := url.Values{
		"info_hash": {ih}, "peer_id": {peerID}, "port": {fmt.Sprint(port)},
		"left": {fmt.Sprint(left)}, "compact": {"1"},
	}
	var r announceResp
	get(t, base+"/announce?"+q.Encode()+extra, &r)
	if r.Failure != "" {
		t.Fatalf("announce failed: %s", r.Failure)
	}
	return r
}

func compactPeers(t *testing.T, raw bencode.Bytes) []string {
	t.Helper()
	var s string
	if err := bencode.Unmarshal(raw, &s); err != nil {
		t.Fatalf("peers not compact: %q", raw)
	}
	if len(s)%6 != 0 {
		t.Fatalf("compact peers length %d", len(s))
	}
	var out []string
	for _, p := range decodeCompact(s, 4) {
		out = append(out, p.String())
	}
	return out
}

func TestAnnounceTwoPeers(t *testing.T) {
	srv := newServer(t, New(0))
	a := strings.Repeat("a", 20)
	b := strings.Repeat("b", 20)
	r := announce(t, srv.URL, a, 1001, 100, "&event=started")
	if got := compactPeers(t, r.Peers); len(got) != 0 {
		t.Errorf("first peer got %v, want nobody", got)
	}
	if r.Interval != 60 {
		t.Errorf("interval = %d, want 60", r.Interval)
	}
	r = announce(t, srv.URL, b, 1002, 0, "&event=started")
	if got := compactPeers(t, r.Peers); len(got) != 1 || got[0] != "127.0.0.1:1001" {
		t.Errorf("second peer got %v, want [127.0.0.1:1001]", got)
	}
	r = announce(t, srv.URL, a, 1001, 100, "")
	if got := compactPeers(t, r.Peers); len(got) != 1 || got[0] != "127.0.0.1:1002" {
		t.Errorf("first peer got %v, want [127.0.0.1:1002]", got)
	}
	if r.Complete != 1 || r.Incomplete != 1 {
		t.Errorf("complete %d incomplete %d, want 1 and 1", r.Complete, r.Incomplete)
	}

	// Non-compact form, without peer ids.
	var nc struct {
		Peers []map[string]any `bencode:"peers"`
	}
	q := url.Values{"info_hash": {ih}, "peer_id": {a}, "port": {"1001"}, "left": {"100"}, "compact": {"0"}}
	get(t, srv.URL+"/announce?"+q.Encode(), &nc)
	if len(nc.Peers) != 1 || nc.Peers[0]["ip"] != "127.0.0.1" || nc.Peers[0]["port"] != int64(1002) || len(nc.Peers[0]) != 2 {
		t.Errorf("non-compact peers = %+v, want one with only ip 127.0.0.1 and port 1002", nc.Peers)
	}

	// b stops: a sees nobody.
	announce(t, srv.URL, b, 1002, 0, "&event=stopped")
	r = announce(t, srv.URL, a, 1001, 100, "")
	if got := compactPeers(t, r.Peers); len(got) != 0 {
		t.Errorf("after stop got %v, want nobody", got)
	}
}

type scrapeResp struct {
	Files map[string]struct {
		Complete   int64 `bencode:"complete"`
		Incomplete int64 `bencode:"incomplete"`
		Downloaded int64 `bencode:"downloaded"`
	} `bencode:"files"`
}

func TestScrape(t *testing.T) {
	srv := newServer(t, New(0))
	announce(t, srv.URL, strings.Repeat("s", 20), 2001, 0, "")
	announce(t, srv.URL, strings.Repeat("t", 20), 2002, 0, "")
	announce(t, srv.URL, strings.Repeat("l", 20), 2003, 5, "")
	announce(t, srv.URL, strings.Repeat("l", 20), 2003, 0, "&event=completed")
	announce(t, srv.URL, strings.Repeat("m", 20), 2004, 5, "")
	other := strings.Repeat("\xbb", 20)
	var sr scrapeResp
	get(t, srv.URL+"/scrape?"+url.Values{"info_hash": {ih, other}}.Encode(), &sr)
	f := sr.Files[ih]
	if f.Complete != 3 || f.Incomplete != 1 || f.Downloaded != 1 {
		t.Errorf("scrape = %+v, want 3 complete, 1 incomplete, 1 downloaded", f)
	}
	if o, ok := sr.Files[other]; !ok || o.Complete != 0 || o.Incomplete != 0 {
		t.Errorf("unknown torrent scrape = %+v, %v", o, ok)
	}
}

func TestExpiry(t *testing.T) {
	tr := New(0)
	now := time.Unix(1e9, 0)
	tr.now = func() time.Time { return now }
	srv := newServer(t, tr)
	announce(t, srv.URL, strings.Repeat("a", 20), 1001, 5, "")
	now = now.Add(2*tr.Interval() + time.Second)
	r := announce(t, srv.URL, strings.Repeat("b", 20), 1002, 5, "")
	if got := compactPeers(t, r.Peers); len(got) != 0 {
		t.Errorf("expired peer returned: %v", got)
	}
}

func TestBadAnnounce(t *testing.T) {
	srv := newServer(t, New(0))
	var r announceResp
	get(t, srv.URL+"/announce?info_hash=short&peer_id=x&port=1", &r)
	if !strings.Contains(r.Failure, "info_hash") {
		t.Errorf("failure = %q", r.Failure)
	}
}

func TestPeers6(t *testing.T) {
	tr := New(0)
	ann := func(remote, id string, port int) announceResp {
		q := url.Values{"info_hash": {ih}, "peer_id": {id}, "port": {fmt.Sprint(port)}, "left": {"1"}}
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
		if remote == "127.0.0.1:5000" && len(r.Peers6) != 18 {
			t.Errorf("peers6 has %d bytes, want one peer (18)", len(r.Peers6))
		}
		return r.announceResp
	}
	ann("[::1]:5000", strings.Repeat("6", 20), 7006)
	r := ann("127.0.0.1:5000", strings.Repeat("4", 20), 7004)
	if got := compactPeers(t, r.Peers); len(got) != 0 {
		t.Errorf("IPv6 peer in the IPv4 list: %v", got)
	}
}
