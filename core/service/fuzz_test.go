package service

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// fuzzService is a service over a small tree with a symlink leaving it and
// a secret beside it, for requests through its handler (no network).
func fuzzService(f *testing.F) (*Service, []byte) {
	secret := []byte("SECRET-OUTSIDE-THE-ROOT")
	dir := f.TempDir()
	root := filepath.Join(dir, "root")
	for p, data := range map[string][]byte{
		"a/x.rpm": []byte("xxxx"), "b.rpm": testkit.RandBytes(pl+5, 1), "c d+e.rpm": []byte("c"), "empty": nil,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), data, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), secret, 0o644); err != nil {
		f.Fatal(err)
	}
	os.Symlink("../secret", filepath.Join(root, "link"))
	os.Symlink("..", filepath.Join(root, "up"))
	s, err := New(Config{Root: root, PublicURL: "http://pkgtorrent.test/", MaxFiles: 50, MaxBodyBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	return s, secret
}

// checkAnswer holds for every answer of the service: no internal error, a
// JSON error body for every error, and never the secret outside the root.
func checkAnswer(t *testing.T, what string, w *httptest.ResponseRecorder, secret []byte) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s: status %d: %s", what, w.Code, w.Body)
	}
	if bytes.Contains(w.Body.Bytes(), secret) {
		t.Fatalf("%s: served a file outside the root", what)
	}
	if w.Code >= 400 {
		var e struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("%s: status %d with body %q, not a JSON error", what, w.Code, w.Body)
		}
	}
}

// FuzzBatchRequest posts arbitrary bodies to arbitrary digests: the answer
// is a torrent of exactly the posted batch, or a 4xx JSON error.
func FuzzBatchRequest(f *testing.F) {
	s, secret := fuzzService(f)
	good := `{"files": ["b.rpm", "a/x.rpm"]}`
	gd, _ := batch.Digest([]string{"b.rpm", "a/x.rpm"})
	f.Add(gd, good)
	f.Add(gd, `{"files": ["a/x.rpm", "b.rpm", "b.rpm"]}`)
	f.Add(strings.Repeat("0", 64), `{"files": ["../secret"]}`)
	f.Add(strings.Repeat("0", 64), `{"files": ["link"]}`)
	f.Add(strings.Repeat("0", 64), `{"files": ["up/secret"]}`)
	f.Add(strings.Repeat("0", 64), `{"files": ["/etc/passwd", "a\u0000b"]}`)
	f.Add(strings.Repeat("0", 64), `{"files": [".pad/5"]} trailing`)
	f.Add("xyz", `{"files": 3}`)
	f.Fuzz(func(t *testing.T, digest, body string) {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.URL.Path = api.Prefix + api.TorrentPath + digest
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		checkAnswer(t, "POST "+digest, w, secret)
		if w.Code != http.StatusOK {
			return
		}
		var posted struct{ Files []string }
		if err := json.Unmarshal([]byte(body), &posted); err != nil {
			t.Fatalf("200 for a body that is not JSON: %q", body)
		}
		canon, err := batch.Canonical(posted.Files)
		if err != nil {
			t.Fatalf("200 for invalid paths %q: %v", posted.Files, err)
		}
		if d, _ := batch.Digest(canon); d != digest {
			t.Fatalf("200 for digest %s of files with digest %s", digest, d)
		}
		_, info, _, err := torrentfile.Parse(w.Body.Bytes())
		if err != nil {
			t.Fatalf("200 with a torrent that does not parse: %v", err)
		}
		var got []string
		for _, fi := range info.UpvertedFiles() {
			if !strings.Contains(fi.Attr, "p") {
				got = append(got, strings.Join(fi.Path, "/"))
			}
		}
		if strings.Join(got, "\n") != strings.Join(canon, "\n") {
			t.Fatalf("torrent holds %q, posted %q", got, canon)
		}
	})
}

// FuzzRequestPath sends GET requests for arbitrary paths (files, webseed,
// API): nothing outside the root is ever served, and no error is internal.
func FuzzRequestPath(f *testing.F) {
	s, secret := fuzzService(f)
	for _, p := range []string{
		"/b.rpm", "/link", "/up/secret", "/%2e%2e/secret", "/a/%2e%2e/%2e%2e/secret", "//etc/passwd",
		"/a%00b", "/.pkgtorrent/v1/webseed/n/up/secret", "/.pkgtorrent/v1/webseed/n/.pad/7",
		"/.pkgtorrent/v1/torrent/" + strings.Repeat("a", 64), "/.pkgtorrent/x", "/c%20d+e.rpm", "/..%2fsecret",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.RawPath = ""
		req.URL.Path = p
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		checkAnswer(t, "GET "+p, w, secret)
	})
}
