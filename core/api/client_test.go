package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/service"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// startService serves a tree of files on 127.0.0.1 until the test ends.
func startService(t *testing.T, files map[string]string) (*service.Service, string) {
	t.Helper()
	root := t.TempDir()
	for p, data := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String() + "/"
	s, err := service.New(service.Config{Root: root, PublicURL: base})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return s, base
}

// recorder is a transport that records the requests' methods and answers.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.seen = append(r.seen, req.Method+" "+resp.Status[:3])
		r.mu.Unlock()
	}
	return resp, err
}

// take returns the requests seen since the last take.
func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.seen, ", ")
	r.seen = nil
	return s
}

func TestTorrent(t *testing.T) {
	s, base := startService(t, map[string]string{"x.rpm": "xx", "b.rpm": "bbb"})
	rec := &recorder{}
	hc := &http.Client{Transport: rec}
	ctx := context.Background()
	files := []string{"b.rpm", "x.rpm", "b.rpm"}

	// Unknown to the service: 412, then the POST builds it.
	built, err := api.Torrent(ctx, hc, base, files)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); got != "GET 412, POST 200" {
		t.Errorf("first Torrent sent %s, want GET 412, POST 200", got)
	}
	_, info, _, err := torrentfile.Parse(built)
	if err != nil {
		t.Fatal(err)
	}
	spans, err := torrentfile.Layout(info)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || spans[0].Path != "b.rpm" || spans[1].Path != "x.rpm" {
		t.Errorf("torrent holds %+v, want b.rpm and x.rpm", spans)
	}

	// Known now: one GET (the base URL without its trailing slash works too).
	got, err := api.Torrent(ctx, hc, strings.TrimSuffix(base, "/"), []string{"x.rpm", "b.rpm"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(built) {
		t.Error("GET returned another torrent than the POST")
	}
	if got := rec.take(); got != "GET 200" {
		t.Errorf("second Torrent sent %s, want GET 200", got)
	}

	st, err := api.GetStats(ctx, hc, base)
	if err != nil {
		t.Fatal(err)
	}
	if st != s.Stats() || st.TorrentsBuilt != 1 || st.TorrentRequests != 3 {
		t.Errorf("GetStats = %+v, service %+v; want 1 built of 3 requests", st, s.Stats())
	}
}

func TestTorrentErrors(t *testing.T) {
	s, base := startService(t, map[string]string{"b.rpm": "bbb"})
	rec := &recorder{}
	hc := &http.Client{Transport: rec}
	ctx := context.Background()

	// The service refuses the build: its error body is the error's message.
	_, err := api.Torrent(ctx, hc, base, []string{"b.rpm", "nope.rpm"})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "nope.rpm") {
		t.Fatalf("missing file: %v, want a 400 StatusError about nope.rpm", err)
	}
	if want := "service: 400 Bad Request: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if got := rec.take(); got != "GET 412, POST 400" {
		t.Errorf("sent %s, want GET 412, POST 400", got)
	}

	// An invalid path is refused before any request.
	if _, err := api.Torrent(ctx, hc, base, []string{"../secret"}); err == nil || errors.As(err, &se) {
		t.Errorf("invalid path: %v", err)
	}
	if got := rec.take(); got != "" {
		t.Errorf("an invalid batch sent %s", got)
	}

	// A service that is not there.
	if _, err := api.Torrent(ctx, hc, "http://127.0.0.1:1/", []string{"b.rpm"}); err == nil || !strings.Contains(err.Error(), "service unreachable") {
		t.Errorf("unreachable service: %v", err)
	}
	if st := s.Stats(); st.TorrentsBuilt != 0 {
		t.Errorf("failed requests built %d torrents", st.TorrentsBuilt)
	}
}

func TestURLs(t *testing.T) {
	// The paths are a wire format: clients in the field use them.
	d := strings.Repeat("0", 64)
	for got, want := range map[string]string{
		api.TorrentURL("http://m.example/repo/", d): "http://m.example/repo/.pkgtorrent/v1/torrent/" + d,
		api.TorrentURL("http://m.example/repo", d):  "http://m.example/repo/.pkgtorrent/v1/torrent/" + d,
		api.WebseedURL("http://m.example/"):         "http://m.example/.pkgtorrent/v1/webseed/",
		api.AnnounceURL("http://m.example/"):        "http://m.example/.pkgtorrent/v1/announce",
		api.ScrapeURL("http://m.example/"):          "http://m.example/.pkgtorrent/v1/scrape",
		api.StatsURL("http://m.example/"):           "http://m.example/.pkgtorrent/v1/stats",
		api.MetricsURL("http://m.example/"):         "http://m.example/.pkgtorrent/v1/metrics",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
