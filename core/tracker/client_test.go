package tracker

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

func TestScrapeClient(t *testing.T) {
	var ih, other [20]byte
	for i := range ih {
		ih[i] = byte(i*7 + 1)
		other[i] = byte(i)
	}
	ih[3] = '&' // needs escaping in a query
	var gotPath, gotQuery atomic.Value
	srv := testkit.LocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath.Store(r.URL.Path)
		gotQuery.Store(r.URL.Query())
		if !strings.HasSuffix(r.URL.Path, "/scrape") && !strings.HasSuffix(r.URL.Path, "/scrape.php") {
			http.NotFound(w, r)
			return
		}
		type stats struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
			Downloaded int `bencode:"downloaded"`
		}
		// downloaded is deliberately large, to catch it being counted.
		b, err := bencode.Marshal(map[string]any{"files": map[string]stats{
			string(ih[:]):    {Complete: 7, Incomplete: 2, Downloaded: 1000},
			string(other[:]): {Complete: 3},
		}})
		if err != nil {
			t.Error(err)
		}
		w.Write(b)
	}))
	c := srv.Client()

	tests := []struct {
		announce string
		path     string
		key      string
	}{
		{srv.URL + "/announce", "/scrape", ""},
		{srv.URL + "/tracker/announce?passkey=s3cret", "/tracker/scrape", "s3cret"},
		{srv.URL + "/x/announce.php", "/x/scrape.php", ""},
		{srv.URL + "/.pkgtorrent/v1/announce", "/.pkgtorrent/v1/scrape", ""},
	}
	for _, tt := range tests {
		// Seeders and leechers both count (complete + incomplete), not
		// the downloaded total.
		n, err := Scrape(c, tt.announce, ih)
		if err != nil || n != 9 {
			t.Errorf("scrape(%s) = %d, %v; want 9 (7 complete + 2 incomplete)", tt.announce, n, err)
			continue
		}
		if p := gotPath.Load().(string); p != tt.path {
			t.Errorf("scrape(%s) requested %q, want %q", tt.announce, p, tt.path)
		}
		q := gotQuery.Load().(url.Values)
		if hs := q["info_hash"]; len(hs) != 1 || hs[0] != string(ih[:]) {
			t.Errorf("scrape(%s) info_hash %q, want %q", tt.announce, hs, ih[:])
		}
		if tt.key != "" && (len(q["passkey"]) != 1 || q["passkey"][0] != tt.key) {
			t.Errorf("scrape(%s) lost the announce query: %v", tt.announce, q)
		}
	}

	if n, err := Scrape(c, srv.URL+"/announce", other); err != nil || n != 3 {
		t.Errorf("scrape of the other torrent = %d, %v; want 3", n, err)
	}

	// An unknown torrent has no peers.
	var unknown [20]byte
	unknown[0] = 0xff
	if n, err := Scrape(c, srv.URL+"/announce", unknown); err != nil || n != 0 {
		t.Errorf("scrape of an unknown torrent = %d, %v", n, err)
	}
}

func TestScrapeClientErrors(t *testing.T) {
	srv := testkit.LocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/garbage/scrape":
			io.WriteString(w, "<html>not bencode</html>")
		case "/fail/scrape":
			http.Error(w, "nope", http.StatusForbidden)
		default:
			http.NotFound(w, r)
		}
	}))
	c := srv.Client()
	var ih [20]byte
	for _, tt := range []struct{ announce, msg string }{
		{srv.URL + "/tracker", "no scrape convention"},
		{srv.URL + "/", "no scrape convention"},
		{"udp://tracker.example:6969/announce", "no scrape convention"},
		{"wss://tracker.example/announce", "no scrape convention"},
		{srv.URL + "/garbage/announce", "scrape"},
		{srv.URL + "/fail/announce", "403"},
		{"http://[::1", ""},
	} {
		n, err := Scrape(c, tt.announce, ih)
		if err == nil {
			t.Errorf("scrape(%s) = %d, nil; want an error", tt.announce, n)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("scrape(%s) error %q does not mention %q", tt.announce, err, tt.msg)
		}
	}
}

// A "stopped" announce removes the agent from the embedded tracker's swarm,
// so that newcomers do not wait for a seeder that has left.
func TestAnnounceStopped(t *testing.T) {
	tr := New(0)
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", tr.ServeAnnounce)
	mux.HandleFunc("/scrape", tr.ServeScrape)
	srv := testkit.LocalServer(t, mux)
	var ih [20]byte
	ih[0] = 7
	var id [20]byte
	copy(id[:], "-PT0001-abcdefghijkl")
	q := url.Values{"info_hash": {string(ih[:])}, "peer_id": {string(id[:])}, "port": {"6881"}, "left": {"0"}, "event": {"started"}}
	resp, err := http.Get(srv.URL + "/announce?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n, err := Scrape(srv.Client(), srv.URL+"/announce", ih); err != nil || n != 1 {
		t.Fatalf("scrape after announcing = %d, %v; want 1", n, err)
	}
	if err := AnnounceEvent(srv.Client(), srv.URL+"/announce", ih, id, 6881, "stopped"); err != nil {
		t.Fatal(err)
	}
	if n, err := Scrape(srv.Client(), srv.URL+"/announce", ih); err != nil || n != 0 {
		t.Fatalf("scrape after the stopped announce = %d, %v; want 0", n, err)
	}
	if err := AnnounceEvent(srv.Client(), "udp://tracker.example:6969/announce", ih, id, 6881, "stopped"); err == nil {
		t.Error("no error for a UDP tracker")
	}
}

// An info hash or peer id with a 0x20 byte goes out as %20, not +: trackers
// such as opentracker decode only percent escapes, and took "+" for another
// info hash (the agent's scrape found no swarm, its completed and stopped
// announces were refused by opentracker's whitelist).
func TestClientEncodesSpaceAsPercent20(t *testing.T) {
	var ih, id [20]byte
	ih[5], id[9] = ' ', ' '
	ih[6] = '+'
	var raws []string
	var mu sync.Mutex
	srv := testkit.LocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		raws = append(raws, r.URL.RawQuery)
		mu.Unlock()
		w.Write([]byte("d5:filesdee"))
	}))
	if err := AnnounceEvent(srv.Client(), srv.URL+"/announce", ih, id, 6881, "completed"); err != nil {
		t.Fatal(err)
	}
	if _, err := Scrape(srv.Client(), srv.URL+"/announce", ih); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(raws) != 2 {
		t.Fatalf("%d requests, want 2", len(raws))
	}
	for _, raw := range raws {
		if strings.Contains(raw, "+") {
			t.Errorf("query %q has a +", raw)
		}
		// Decoded by percent escapes alone, as opentracker does.
		for _, kv := range strings.Split(raw, "&") {
			k, v, _ := strings.Cut(kv, "=")
			want, ok := map[string][20]byte{"info_hash": ih, "peer_id": id}[k]
			if !ok {
				continue
			}
			got, err := url.PathUnescape(v)
			if err != nil || got != string(want[:]) {
				t.Errorf("%s=%s decodes to %q (%v), want %q", k, v, got, err, want[:])
			}
		}
	}
}
