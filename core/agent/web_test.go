package agent

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

func TestPadTransport(t *testing.T) {
	var hits atomic.Int32
	srv := testkit.LocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	for _, p := range []string{"/seed/n/.pad/0", "/seed/n/.pad/01", fmt.Sprintf("/seed/n/.pad/%d", torrentfile.PieceLength), "/seed/n/x.pad/5"} {
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
	srv := testkit.LocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
