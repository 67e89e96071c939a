package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestHTTPOnly(t *testing.T) {
	for _, c := range []struct {
		url  string
		want bool
	}{
		{"http://m.example/core/os/x86_64/core.db", true},
		{"http://m.example/core/os/x86_64/core.files", true},
		{"http://m.example/core/os/x86_64/core.db.sig", true},
		{"http://m.example/core/os/x86_64/foo-1-1-x86_64.pkg.tar.zst.sig", true},
		{"http://m.example/core/os/x86_64/foo-1-1-x86_64.pkg.tar.zst", false},
		{"http://m.example/core.db/os/x86_64/foo-1-1-x86_64.pkg.tar.zst", false},
		{"http://m.example/core/os/x86_64/core.db.tar.gz", false},
	} {
		got, err := httpOnly(DefaultHTTPOnly, c.url)
		if err != nil || got != c.want {
			t.Errorf("httpOnly(%s) = %v, %v; want %v", c.url, got, err, c.want)
		}
	}
	if _, err := httpOnly([]string{"[x"}, "http://m.example/a"); err == nil || !strings.Contains(err.Error(), `"[x"`) {
		t.Errorf("bad pattern: error %v, want one naming the pattern", err)
	}
}

// Files matching HTTPOnly never reach the service: with no service at all
// and the fallback off, they are still fetched, over plain HTTP.
func TestRunHTTPOnlySkipsService(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path)
		mu.Unlock()
		w.Write([]byte("db bytes"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	items := []Item{
		{URL: srv.URL + "/core/os/x86_64/core.db", Output: filepath.Join(dir, "core.db.part")},
		{URL: srv.URL + "/core/os/x86_64/core.db.sig", Output: filepath.Join(dir, "core.db.sig.part")},
	}
	cfg := Config{Service: "http://127.0.0.1:1/", HTTPOnly: DefaultHTTPOnly}
	res, err := Run(context.Background(), cfg, items)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || res.BytesFromHTTP != 16 || res.Fallback {
		t.Errorf("result %+v, want 2 files, 16 bytes over HTTP, no fallback", res)
	}
	for _, it := range items {
		if b, err := os.ReadFile(it.Output); err != nil || string(b) != "db bytes" {
			t.Errorf("%s: %q, %v", it.Output, b, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || strings.Contains(strings.Join(asked, " "), ".pkgtorrent") {
		t.Errorf("server was asked for %v", asked)
	}
	// Without the patterns the same items go to the (absent) service.
	cfg.HTTPOnly = nil
	if _, err := Run(context.Background(), cfg, items); err == nil {
		t.Error("no error with the service down, the fallback off and no http-only patterns")
	}
}

// An http-only file over the cap is refused, whether the server announces
// its length or not, and nothing is left at the destination.
func TestHTTPOnlyMaxSize(t *testing.T) {
	big := strings.Repeat("x", 5000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "chunked.db") {
			w.(http.Flusher).Flush() // no Content-Length
		}
		w.Write([]byte(big))
	}))
	defer srv.Close()
	for _, name := range []string{"sized.db", "chunked.db"} {
		dir := t.TempDir()
		items := []Item{{URL: srv.URL + "/core/os/x86_64/" + name, Output: filepath.Join(dir, name+".part")}}
		cfg := Config{HTTPOnly: DefaultHTTPOnly, HTTPOnlyMaxSize: 4096}
		if _, err := Run(context.Background(), cfg, items); err == nil || !strings.Contains(err.Error(), "http-only-max-size") {
			t.Errorf("%s: error %v, want the cap named", name, err)
		}
		if es, _ := os.ReadDir(dir); len(es) != 0 {
			t.Errorf("%s: left %d files behind", name, len(es))
		}
		cfg.HTTPOnlyMaxSize = 5000
		if _, err := Run(context.Background(), cfg, items); err != nil {
			t.Errorf("%s at the cap: %v", name, err)
		}
	}
}
