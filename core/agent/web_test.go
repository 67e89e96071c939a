package agent

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/core/tracker"
)

// localServer is an httptest server on 127.0.0.1 answering every path with
// "real:" + the path, and counting requests.
func localServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestPadTransport(t *testing.T) {
	var hits atomic.Int32
	srv := localServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "real:"+r.URL.Path)
	}))
	c := &http.Client{Transport: padTransport{next: srv.Client().Transport}}

	get := func(path, rng string) (*http.Response, []byte, error) {
		req, err := http.NewRequest("GET", srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}

	tests := []struct {
		path, rng    string
		status       int
		body         []byte
		contentRange string
	}{
		{"/seed/pkgtorrent-0123/.pad/5?pkgtorrent-pad", "", 200, make([]byte, 5), ""},
		{"/fedora/.pad/16383?pkgtorrent-pad", "", 200, make([]byte, 16383), ""},
		{"/seed/n/.pad/5?pkgtorrent-pad", "bytes=1-3", 206, make([]byte, 3), "bytes 1-3/5"},
		{"/seed/n/.pad/5?pkgtorrent-pad", "bytes=0-4", 206, make([]byte, 5), "bytes 0-4/5"},
		{"/seed/n/.pad/5?pkgtorrent-pad", "bytes=4-4", 206, make([]byte, 1), "bytes 4-4/5"},
	}
	for _, tt := range tests {
		resp, body, err := get(tt.path, tt.rng)
		if err != nil {
			t.Errorf("GET %s (%s): %v", tt.path, tt.rng, err)
			continue
		}
		if resp.StatusCode != tt.status || !bytes.Equal(body, tt.body) {
			t.Errorf("GET %s (%s) = %d, %d bytes %q; want %d, %d zeros", tt.path, tt.rng, resp.StatusCode, len(body), body[:min(len(body), 20)], tt.status, len(tt.body))
		}
		if got := resp.Header.Get("Content-Range"); got != tt.contentRange {
			t.Errorf("GET %s (%s): Content-Range %q, want %q", tt.path, tt.rng, got, tt.contentRange)
		}
		if resp.ContentLength != int64(len(tt.body)) {
			t.Errorf("GET %s (%s): ContentLength %d, want %d", tt.path, tt.rng, resp.ContentLength, len(tt.body))
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d pad requests reached the server", n)
	}

	// Everything else goes to the next transport.
	for _, p := range []string{
		"/seed/n/a.rpm",
		"/seed/n/.pad/5", // unmarked: a repository file under a .pad directory
		"/seed/n/.pad/x",
		"/seed/n/.pad/5/more",
		"/seed/n/.padx/5",
	} {
		before := hits.Load()
		resp, body, err := get(p, "")
		if err != nil {
			t.Errorf("GET %s: %v", p, err)
			continue
		}
		if resp.StatusCode != 200 || string(body) != "real:"+p || hits.Load() != before+1 {
			t.Errorf("GET %s = %d %q, want it passed to the server", p, resp.StatusCode, body)
		}
	}

	// Marked requests without a valid pad path are errors, not wrong data.
	for _, p := range []string{"/seed/n/.pad/0", "/seed/n/.pad/01", "/seed/n/.pad/16384", "/seed/n/x.pad/5"} {
		if resp, body, err := get(p+"?pkgtorrent-pad", ""); err == nil {
			t.Errorf("GET %s: %d %q, want an error", p, resp.StatusCode, body)
		}
	}

	// Bad ranges are errors, not wrong data.
	for _, rng := range []string{"bytes=3-1", "bytes=0-5", "bytes=2-", "items=0-1", "bytes=-2"} {
		if resp, body, err := get("/seed/n/.pad/5?pkgtorrent-pad", rng); err == nil {
			t.Errorf("Range %q: %d %q, want an error", rng, resp.StatusCode, body)
		}
	}
}

// A repository file whose path merely contains a ".pad/N" component below
// the top (valid by batch.CleanPath, "x/.pad/3") is a real file.
func TestPadTransportNestedPad(t *testing.T) {
	srv := localServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "abc")
	}))
	c := &http.Client{Transport: padTransport{next: srv.Client().Transport}}
	resp, err := c.Get(srv.URL + "/fedora/x/.pad/3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "abc" {
		t.Errorf("GET x/.pad/3 under a mirror = %q, want the file's %q", body, "abc")
	}
}

func TestMirrorPath(t *testing.T) {
	tests := []struct {
		comps []string
		want  string
	}{
		{[]string{"pkgtorrent-0123", "a.rpm"}, "a.rpm"},
		{[]string{"name", "Packages", "g", "gcc.rpm"}, "Packages/g/gcc.rpm"},
		{[]string{"name", "a b", "c+d.rpm"}, "a%20b/c%2Bd.rpm"},
		{[]string{"name", "q?#", "100%"}, "q%3F%23/100%25"},
		{[]string{"name", ".pad", "5"}, ".pad/5?pkgtorrent-pad"},
		{[]string{"name", "x", ".pad", "5"}, "x/.pad/5"},
		{[]string{"name"}, ""},
	}
	for _, tt := range tests {
		if got := mirrorPath(tt.comps); got != tt.want {
			t.Errorf("mirrorPath(%q) = %q, want %q", tt.comps, got, tt.want)
		}
	}
}

func TestScrape(t *testing.T) {
	var ih, other metainfo.Hash
	for i := range ih {
		ih[i] = byte(i*7 + 1)
		other[i] = byte(i)
	}
	ih[3] = '&' // needs escaping in a query
	var gotPath, gotQuery atomic.Value
	srv := localServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		n, err := scrape(c, tt.announce, ih)
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

	if n, err := scrape(c, srv.URL+"/announce", other); err != nil || n != 3 {
		t.Errorf("scrape of the other torrent = %d, %v; want 3", n, err)
	}

	// An unknown torrent has no peers.
	var unknown metainfo.Hash
	unknown[0] = 0xff
	if n, err := scrape(c, srv.URL+"/announce", unknown); err != nil || n != 0 {
		t.Errorf("scrape of an unknown torrent = %d, %v", n, err)
	}
}

func TestScrapeErrors(t *testing.T) {
	srv := localServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	var ih metainfo.Hash
	for _, tt := range []struct{ announce, msg string }{
		{srv.URL + "/tracker", "no scrape convention"},
		{srv.URL + "/", "no scrape convention"},
		{"udp://tracker.example:6969/announce", "no scrape convention"},
		{"wss://tracker.example/announce", "no scrape convention"},
		{srv.URL + "/garbage/announce", "scrape"},
		{srv.URL + "/fail/announce", "403"},
		{"http://[::1", ""},
	} {
		n, err := scrape(c, tt.announce, ih)
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
	tr := tracker.New(0)
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", tr.ServeAnnounce)
	mux.HandleFunc("/scrape", tr.ServeScrape)
	srv := localServer(t, mux)
	var ih metainfo.Hash
	ih[0] = 7
	var id [20]byte
	copy(id[:], "-PT0001-abcdefghijkl")
	q := url.Values{"info_hash": {string(ih[:])}, "peer_id": {string(id[:])}, "port": {"6881"}, "left": {"0"}, "event": {"started"}}
	resp, err := http.Get(srv.URL + "/announce?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n, err := scrape(srv.Client(), srv.URL+"/announce", ih); err != nil || n != 1 {
		t.Fatalf("scrape after announcing = %d, %v; want 1", n, err)
	}
	if err := announceStopped(srv.Client(), srv.URL+"/announce", ih, id, 6881); err != nil {
		t.Fatal(err)
	}
	if n, err := scrape(srv.Client(), srv.URL+"/announce", ih); err != nil || n != 0 {
		t.Fatalf("scrape after the stopped announce = %d, %v; want 0", n, err)
	}
	if err := announceStopped(srv.Client(), "udp://tracker.example:6969/announce", ih, id, 6881); err == nil {
		t.Error("no error for a UDP tracker")
	}
}
