package service

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

const pl = torrentfile.PieceLength

// writeTree writes files (path → content) under a new directory.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range files {
		writeFile(t, filepath.Join(dir, p), data)
	}
	return dir
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs a service over root on 127.0.0.1:0 until the test ends.
func start(t *testing.T, cfg Config) (*Service, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.Close()
	})
	return s, s.URL()
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, contentType string, body []byte, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, b := testkit.Do(t, nil, req)
	return response{resp.StatusCode, resp.Header, b}
}

func digest(t *testing.T, files []string) string {
	t.Helper()
	d, err := batch.Digest(files)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func filesBody(files []string) []byte {
	b, _ := json.Marshal(api.TorrentRequest{Files: files})
	return b
}

func post(t *testing.T, base string, files []string) response {
	t.Helper()
	return do(t, "POST", api.TorrentURL(base, digest(t, files)), "application/json", filesBody(files))
}

func checkJSONError(t *testing.T, name string, r response, code int, mention string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: status %d, want %d (body %s)", name, r.code, code, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", name, cc)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Errorf("%s: body %q is not a JSON error", name, r.body)
		return
	}
	if !strings.Contains(e.Error, mention) {
		t.Errorf("%s: error %q does not mention %q", name, e.Error, mention)
	}
}

func TestBadRequests(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), []byte("secret"))
	root := writeTree(t, map[string][]byte{
		"a/x.rpm":   []byte("xxxx"),
		"b.rpm":     []byte("bbbb"),
		"c.rpm":     []byte("cccc"),
		"dir/y.rpm": []byte("y"),
	})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	s, base := start(t, Config{Root: root, MaxFiles: 2, MaxBodyBytes: 300})
	torrents := api.TorrentURL(base, "")
	zero := strings.Repeat("0", 64)
	postRaw := func(files []string) response {
		return do(t, "POST", torrents+zero, "application/json", filesBody(files))
	}
	cases := []struct {
		name    string
		resp    response
		code    int
		mention string
	}{
		{"dotdot", postRaw([]string{"../etc/passwd"}), 400, "../etc/passwd"},
		{"absolute", postRaw([]string{"/etc/passwd"}), 400, "/etc/passwd"},
		{"nul", postRaw([]string{"a\x00b"}), 400, "NUL"},
		{"symlink out", post(t, base, []string{"link"}), 400, `"link"`},
		{"missing", post(t, base, []string{"nope.rpm"}), 400, "nope.rpm"},
		{"directory", post(t, base, []string{"dir"}), 400, `"dir"`},
		{"reserved", postRaw([]string{".pad/5"}), 400, ".pad"},
		{"digest mismatch", postRaw([]string{"b.rpm"}), 400, "digest mismatch"},
		{"too many files", post(t, base, []string{"a/x.rpm", "b.rpm", "c.rpm"}), 413, "limit of 2"},
		{"oversized body", do(t, "POST", torrents+zero, "application/json", filesBody([]string{strings.Repeat("x", 400)})), 413, "300 bytes"},
		{"bad JSON", do(t, "POST", torrents+zero, "application/json", []byte(`{"files": [`)), 400, "JSON"},
		{"trailing JSON", do(t, "POST", torrents+zero, "application/json", []byte(`{"files": ["b.rpm"]} x`)), 400, "JSON"},
		{"no files", do(t, "POST", torrents+zero, "application/json", []byte(`{}`)), 400, "files"},
		{"content type", do(t, "POST", torrents+zero, "text/plain", filesBody([]string{"b.rpm"})), 415, "text/plain"},
		{"malformed digest GET", do(t, "GET", torrents+"xyz", "", nil), 400, "xyz"},
		{"uppercase digest POST", do(t, "POST", torrents+strings.Repeat("A", 64), "application/json", filesBody([]string{"b.rpm"})), 400, "malformed"},
		{"GET encoded dotdot", do(t, "GET", base+"%2e%2e/etc/passwd", "", nil), 400, ".."},
		{"GET dotdot in dir", do(t, "GET", base+"a/%2e%2e/b.rpm", "", nil), 400, ".."},
		{"GET symlink out", do(t, "GET", base+"link", "", nil), 404, "link"},
		{"GET missing", do(t, "GET", base+"nope.rpm", "", nil), 404, "nope.rpm"},
		{"GET directory", do(t, "GET", base+"dir", "", nil), 404, "dir"},
		{"GET root", do(t, "GET", base, "", nil), 404, "index"},
		{"GET pad as file", do(t, "GET", base+".pad/5", "", nil), 400, ".pad"},
		{"PUT file", do(t, "PUT", base+"b.rpm", "", nil), 405, "PUT"},
		{"webseed dotdot", do(t, "GET", api.WebseedURL(base)+"n/%2e%2e/b.rpm", "", nil), 400, ".."},
		{"webseed symlink out", do(t, "GET", api.WebseedURL(base)+"n/link", "", nil), 404, "link"},
		{"webseed no name", do(t, "GET", api.WebseedURL(base)+"b.rpm", "", nil), 400, "b.rpm"},
		{"webseed bad pad", do(t, "GET", api.WebseedURL(base)+"n/.pad/99999", "", nil), 400, ".pad"},
		{"unknown API", do(t, "GET", api.URL(base, "nothing"), "", nil), 404, "nothing"},
		{"unversioned API", do(t, "GET", base+".pkgtorrent/stats", "", nil), 404, "/.pkgtorrent/v1/"},
	}
	for _, c := range cases {
		checkJSONError(t, c.name, c.resp, c.code, c.mention)
	}
	if st := s.Stats(); st.TorrentsBuilt != 0 || st.HashBytesRead != 0 || st.FileBytesSent != 0 {
		t.Errorf("bad requests had effects: %+v", st)
	}
}

func TestUnknownDigest(t *testing.T) {
	root := writeTree(t, map[string][]byte{"f": []byte("f")})
	_, base := start(t, Config{Root: root})
	r := do(t, "GET", api.TorrentURL(base, digest(t, []string{"f"})), "", nil)
	checkJSONError(t, "unknown", r, http.StatusPreconditionFailed, "not known")
}

func TestReservedRootEntry(t *testing.T) {
	root := writeTree(t, map[string][]byte{".pkgtorrent/x": []byte("x")})
	if _, err := New(Config{Root: root}); err == nil || !strings.Contains(err.Error(), ".pkgtorrent") {
		t.Errorf("New over a root with .pkgtorrent: %v", err)
	}
}

// sizes covers the padding edge cases.
var sizes = map[string]int{
	"empty":        0,
	"one":          1,
	"a/short":      pl - 1,
	"a/exact":      pl,
	"a/b/over":     pl + 1,
	"pkgs/big.rpm": 3*pl + 5,
	"z/last":       100_000,
}

func sizedTree(t *testing.T) (string, []string) {
	files := map[string][]byte{}
	var names []string
	seed := uint64(1)
	for name, n := range sizes {
		files[name] = testkit.RandBytes(n, seed)
		names = append(names, name)
		seed++
	}
	return writeTree(t, files), names
}

// verify checks the torrent's layout and piece hashes against the files
// under root.
func verify(t *testing.T, root string, torrent []byte, wantFiles []string) {
	t.Helper()
	_, info, _, err := torrentfile.Parse(torrent)
	if err != nil {
		t.Fatal(err)
	}
	var stream []byte
	var got []string
	for i, f := range info.Files {
		p := strings.Join(f.Path, "/")
		if f.Attr == "p" {
			if n, ok := torrentfile.ParsePadPath(p); !ok || n != f.Length {
				t.Errorf("pad file %q has length %d", p, f.Length)
			}
			stream = append(stream, make([]byte, f.Length)...)
			continue
		}
		if len(stream)%pl != 0 {
			t.Errorf("file %q starts at %d, not on a piece boundary", p, len(stream))
		}
		got = append(got, p)
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != f.Length {
			t.Errorf("file %q length %d, want %d", p, f.Length, len(data))
		}
		stream = append(stream, data...)
		last := i == len(info.Files)-1
		pad := torrentfile.PadLength(f.Length)
		if !last && pad != 0 {
			next := info.Files[i+1]
			if next.Attr != "p" || next.Length != pad {
				t.Errorf("file %q is not followed by a %d-byte pad file", p, pad)
			}
		}
	}
	if strings.Join(got, "\n") != strings.Join(wantFiles, "\n") {
		t.Errorf("torrent files %v, want %v", got, wantFiles)
	}
	var pieces []byte
	for off := 0; off < len(stream); off += pl {
		sum := sha1.Sum(stream[off:min(off+pl, len(stream))])
		pieces = append(pieces, sum[:]...)
	}
	if !bytes.Equal(pieces, info.Pieces) {
		t.Error("piece hashes do not match the file data")
	}
}

func TestBuildDeterministic(t *testing.T) {
	root, names := sizedTree(t)
	canon, _ := batch.Canonical(names)
	cfg := Config{Root: root, PublicURL: "http://mirror.example/repo", Mirrors: []string{"http://other.example/fedora/"}}
	s1, base1 := start(t, cfg)
	_, base2 := start(t, cfg)

	r := post(t, base1, names)
	if r.code != 200 || r.header.Get("Content-Type") != "application/x-bittorrent" {
		t.Fatalf("POST: %d %s %s", r.code, r.header.Get("Content-Type"), r.body)
	}
	g := do(t, "GET", api.TorrentURL(base1, digest(t, names)), "", nil)
	if g.code != 200 || !bytes.Equal(g.body, r.body) {
		t.Fatalf("GET after POST: %d, identical %v", g.code, bytes.Equal(g.body, r.body))
	}
	r2 := post(t, base2, names)
	if r2.code != 200 || !bytes.Equal(r2.body, r.body) {
		t.Fatal("two services built different torrents for the same batch")
	}
	verify(t, root, r.body, canon)

	mi, info, mirrors, err := torrentfile.Parse(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Announce != "http://mirror.example/repo/.pkgtorrent/v1/announce" {
		t.Errorf("announce %q", mi.Announce)
	}
	if len(mi.UrlList) != 1 || mi.UrlList[0] != "http://mirror.example/repo/.pkgtorrent/v1/webseed/" {
		t.Errorf("url-list %q", mi.UrlList)
	}
	if len(mirrors) != 1 || mirrors[0] != "http://other.example/fedora/" {
		t.Errorf("mirrors %q", mirrors)
	}
	if info.Name != torrentfile.Name(digest(t, names)) {
		t.Errorf("name %q", info.Name)
	}
	st := s1.Stats()
	if st.TorrentsBuilt != 1 || st.TorrentRequests != 2 {
		t.Errorf("stats %+v, want 1 built, 2 requests", st)
	}
	var total int64
	for _, n := range sizes {
		total += int64(n)
	}
	if st.HashBytesRead != total {
		t.Errorf("HashBytesRead %d, want %d", st.HashBytesRead, total)
	}
}

func TestSharedFilesHashedOnce(t *testing.T) {
	root := writeTree(t, map[string][]byte{
		"a": testkit.RandBytes(50_000, 1), "b": testkit.RandBytes(70_000, 2), "c": testkit.RandBytes(30_001, 3),
	})
	s, base := start(t, Config{Root: root})
	if r := post(t, base, []string{"a", "b"}); r.code != 200 {
		t.Fatalf("first batch: %d %s", r.code, r.body)
	}
	before := s.Stats()
	if before.HashBytesRead != 120_000 {
		t.Fatalf("HashBytesRead %d after first batch", before.HashBytesRead)
	}
	r := post(t, base, []string{"b", "c"})
	if r.code != 200 {
		t.Fatalf("second batch: %d %s", r.code, r.body)
	}
	after := s.Stats()
	if d := after.HashBytesRead - before.HashBytesRead; d != 30_001 {
		t.Errorf("second batch read %d bytes, want only the new file's 30001", d)
	}
	if d := after.HashCacheHits - before.HashCacheHits; d != 1 {
		t.Errorf("second batch had %d cache hits, want 1", d)
	}
	verify(t, root, r.body, []string{"b", "c"})
}

func TestConcurrentPostsBuildOnce(t *testing.T) {
	root, names := sizedTree(t)
	s, base := start(t, Config{Root: root})
	var wg sync.WaitGroup
	bodies := make([][]byte, 16)
	for i := range bodies {
		wg.Go(func() {
			r := post(t, base, names)
			if r.code != 200 {
				t.Errorf("POST %d: %d %s", i, r.code, r.body)
			}
			bodies[i] = r.body
		})
	}
	wg.Wait()
	for i := range bodies {
		if !bytes.Equal(bodies[i], bodies[0]) {
			t.Errorf("POST %d returned a different torrent", i)
		}
	}
	if n := s.Stats().TorrentsBuilt; n != 1 {
		t.Errorf("TorrentsBuilt = %d, want 1", n)
	}
}

func TestReplacedFileRebuilds(t *testing.T) {
	root := writeTree(t, map[string][]byte{"a": testkit.RandBytes(40_000, 1), "b": testkit.RandBytes(20_000, 2)})
	s, base := start(t, Config{Root: root})
	files := []string{"a", "b"}
	first := post(t, base, files)
	if first.code != 200 {
		t.Fatalf("POST: %d %s", first.code, first.body)
	}
	// Replace a the way mirrors do: write a new file, rename over.
	tmp := filepath.Join(root, ".a.tmp")
	writeFile(t, tmp, testkit.RandBytes(40_000, 3))
	if err := os.Chtimes(tmp, time.Time{}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	url := api.TorrentURL(base, digest(t, files))
	second := do(t, "GET", url, "", nil)
	if second.code != 200 {
		t.Fatalf("GET: %d %s", second.code, second.body)
	}
	if bytes.Equal(first.body, second.body) {
		t.Fatal("a replaced file is still served under the old torrent")
	}
	verify(t, root, second.body, files)
	if n := s.Stats().TorrentsBuilt; n != 2 {
		t.Errorf("TorrentsBuilt = %d, want 2", n)
	}
	// Unchanged now: no rebuild.
	if third := do(t, "GET", url, "", nil); !bytes.Equal(third.body, second.body) {
		t.Error("GET of an unchanged batch returned a different torrent")
	}
	if n := s.Stats().TorrentsBuilt; n != 2 {
		t.Errorf("TorrentsBuilt = %d after an unchanged GET, want 2", n)
	}

	// A vanished file: the torrent is forgotten.
	if err := os.Remove(filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	checkJSONError(t, "vanished", do(t, "GET", url, "", nil), http.StatusPreconditionFailed, "not known")
}

func TestFilesAndWebseed(t *testing.T) {
	data := testkit.RandBytes(3*pl+5, 9)
	root := writeTree(t, map[string][]byte{"pkgs/p.rpm": data})
	s, base := start(t, Config{Root: root})

	r := do(t, "GET", base+"pkgs/p.rpm", "", nil)
	if r.code != 200 || !bytes.Equal(r.body, data) {
		t.Fatalf("GET file: %d, %d bytes", r.code, len(r.body))
	}
	if r.header.Get("Last-Modified") == "" {
		t.Error("no Last-Modified")
	}
	r = do(t, "HEAD", base+"pkgs/p.rpm", "", nil)
	if r.code != 200 || r.header.Get("Content-Length") != fmt.Sprint(len(data)) {
		t.Errorf("HEAD: %d length %s", r.code, r.header.Get("Content-Length"))
	}
	ws := api.WebseedURL(base) + "pkgtorrent-0123456789abcdef/"
	r = do(t, "GET", ws+"pkgs/p.rpm", "", nil, "Range", "bytes=100-199")
	if r.code != 206 || !bytes.Equal(r.body, data[100:200]) {
		t.Errorf("webseed range: %d, %d bytes", r.code, len(r.body))
	}
	r = do(t, "GET", ws+".pad/1000", "", nil)
	if r.code != 200 || !bytes.Equal(r.body, make([]byte, 1000)) {
		t.Errorf("webseed pad: %d, %d bytes", r.code, len(r.body))
	}
	r = do(t, "GET", ws+".pad/1000", "", nil, "Range", "bytes=990-")
	if r.code != 206 || !bytes.Equal(r.body, make([]byte, 10)) {
		t.Errorf("webseed pad range: %d, %d bytes", r.code, len(r.body))
	}
	st := s.Stats()
	if want := int64(len(data) + 100); st.FileBytesSent != want {
		t.Errorf("FileBytesSent = %d, want %d", st.FileBytesSent, want)
	}
	if st.PadBytesSent != 1010 {
		t.Errorf("PadBytesSent = %d, want 1010", st.PadBytesSent)
	}

	var js api.Stats
	r = do(t, "GET", api.StatsURL(base), "", nil)
	if err := json.Unmarshal(r.body, &js); err != nil || js.FileBytesSent != st.FileBytesSent {
		t.Errorf("stats endpoint: %s (%v)", r.body, err)
	}
}

func TestOriginRateLimitCounts(t *testing.T) {
	data := testkit.RandBytes(256<<10, 5)
	root := writeTree(t, map[string][]byte{"big": data})
	s, base := start(t, Config{Root: root, OriginRateLimit: 128 << 10})
	if s.limiter == nil || s.limiter.Burst() != chunkSize {
		t.Fatal("no origin rate limiter with a burst of one chunk")
	}
	r := do(t, "GET", base+"big", "", nil)
	if r.code != 200 || !bytes.Equal(r.body, data) {
		t.Fatalf("GET: %d, %d bytes", r.code, len(r.body))
	}
	// The handler counts a chunk once its write returned: the client may
	// have the bytes a moment before.
	var got int64
	testkit.Poll(5*time.Second, func() bool {
		got = s.Stats().FileBytesSent
		return got == int64(len(data))
	})
	if got != int64(len(data)) {
		t.Errorf("FileBytesSent = %d, want %d", got, len(data))
	}
}

func TestTrackerEndpoints(t *testing.T) {
	root := writeTree(t, map[string][]byte{"f": []byte("f")})
	_, base := start(t, Config{Root: root})
	ih := strings.Repeat("%aa", 20)
	r := do(t, "GET", api.AnnounceURL(base)+"?info_hash="+ih+"&peer_id="+strings.Repeat("p", 20)+"&port=6881&left=0", "", nil)
	if r.code != 200 || !bytes.Contains(r.body, []byte("8:interval")) {
		t.Errorf("announce: %d %q", r.code, r.body)
	}
	r = do(t, "GET", api.ScrapeURL(base)+"?info_hash="+ih, "", nil)
	if r.code != 200 || !bytes.Contains(r.body, []byte("8:completei1e")) {
		t.Errorf("scrape: %d %q", r.code, r.body)
	}

	// External trackers replace the embedded one.
	_, ext := start(t, Config{Root: root, Trackers: []string{"http://tracker.example/announce"}})
	checkJSONError(t, "no embedded tracker", do(t, "GET", api.AnnounceURL(ext), "", nil), 404, "announce")
	p := post(t, ext, []string{"f"})
	mi, _, _, err := torrentfile.Parse(p.body)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Announce != "http://tracker.example/announce" {
		t.Errorf("announce %q", mi.Announce)
	}
}

func TestStoreEvictsOldest(t *testing.T) {
	var st torrentStore
	big := make([]byte, maxStoredBytes/2)
	st.put("a", &built{torrent: big})
	st.remove("a")
	st.put("a", &built{torrent: big}) // order now holds "a" twice
	st.put("b", &built{torrent: big})
	st.put("c", &built{torrent: big})
	if st.get("a") != nil || st.get("b") == nil || st.get("c") == nil {
		t.Errorf("after overflow: a %v b %v c %v, want only b and c", st.get("a") != nil, st.get("b") != nil, st.get("c") != nil)
	}
	if st.bytes != 2*len(big) {
		t.Errorf("bytes = %d, want %d", st.bytes, 2*len(big))
	}
	// A single oversized torrent is kept rather than looping.
	var one torrentStore
	one.put("x", &built{torrent: big})
	one.remove("x")
	one.put("x", &built{torrent: make([]byte, maxStoredBytes+1)})
	if one.get("x") == nil {
		t.Error("the only torrent was evicted")
	}
}
