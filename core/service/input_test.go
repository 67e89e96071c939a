package service

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// Every form of path traversal, on every path that names a file: the plain
// file tree, the webseed and a batch POST. Only the configured tree is ever
// served, and the reserved prefix is never a file.
func TestTraversalEveryForm(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), []byte("SECRET"))
	writeFile(t, filepath.Join(outside, "dir", "inner"), []byte("SECRET"))
	root := writeTree(t, map[string][]byte{"a/x.rpm": []byte("x"), "b.rpm": []byte("b")})
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "abs-link"))
	os.Symlink("../"+filepath.Base(outside)+"/secret", filepath.Join(root, "rel-link"))
	os.Symlink(filepath.Join(outside, "dir"), filepath.Join(root, "dir-link"))
	os.Symlink("x.rpm", filepath.Join(root, "a", "inside-link")) // stays inside: fine
	s, base := start(t, Config{Root: root})
	api := base + ".pkgtorrent/v1/"
	gets := []string{
		"../secret", "%2e%2e/secret", "%2E%2E/secret", "a/%2e%2e/%2e%2e/secret", "a/..%2f..%2fsecret",
		"%2e%2e%2fsecret", "a%2f..%2f..%2fsecret", "..%5csecret", "a/%00/x.rpm", "a/x.rpm%00", "%00",
		"/etc/passwd", "%2fetc%2fpasswd", "abs-link", "rel-link", "dir-link/inner", "./a/x.rpm/..",
		".pkgtorrent", ".pkgtorrent/v1", ".pkgtorrent/v1/../../b.rpm",
	}
	for _, p := range gets {
		for _, u := range []string{base + p, api + "webseed/name/" + p} {
			req, err := http.NewRequest("GET", base, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = "//" + req.URL.Host + strings.TrimPrefix(u, strings.TrimSuffix(base, "/"))
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 4096)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			if resp.StatusCode == 200 || strings.Contains(string(b[:n]), "SECRET") {
				t.Errorf("GET %s: %d %q", u, resp.StatusCode, b[:n])
			}
		}
	}
	posts := [][]string{
		{"../secret"}, {"a/../../secret"}, {"/etc/passwd"}, {"abs-link"}, {"rel-link"}, {"dir-link/inner"},
		{"a\x00b"}, {"a/x.rpm\x00"}, {".pkgtorrent/v1/stats"}, {`..\secret`}, {"a//x.rpm"}, {"./b.rpm"},
	}
	for _, files := range posts {
		r := do(t, "POST", api+"torrent/"+strings.Repeat("0", 64), "application/json", filesBody(files))
		if r.code != 400 {
			t.Errorf("POST %q: %d %s", files, r.code, r.body)
		}
		if d, err := batch.Digest(files); err == nil {
			if r := do(t, "POST", api+"torrent/"+d, "application/json", filesBody(files)); r.code != 400 {
				t.Errorf("POST %q with its digest: %d %s", files, r.code, r.body)
			}
		}
	}
	// The symlink inside the tree is served.
	if r := do(t, "GET", base+"a/inside-link", "", nil); r.code != 200 || string(r.body) != "x" {
		t.Errorf("inside symlink: %d %q", r.code, r.body)
	}
	if st := s.Stats(); st.TorrentsBuilt != 0 {
		t.Errorf("bad requests built %d torrents", st.TorrentsBuilt)
	}
}

// A batch of 100 000 files (the default limit) builds; one more is refused
// before any file is looked at.
func TestHundredThousandFiles(t *testing.T) {
	root := t.TempDir()
	files := make([]string, DefaultMaxFiles)
	for i := range files {
		files[i] = fmt.Sprintf("p/%03d/f%05d.rpm", i%500, i)
	}
	for i := 0; i < 500; i++ {
		if err := os.MkdirAll(filepath.Join(root, "p", fmt.Sprintf("%03d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Hard links to a few files (a file system caps links per file):
	// 100 000 files at the cost of 100 000 links.
	src := t.TempDir()
	for i := range 4 {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprint(i)), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	made := time.Now()
	for i, f := range files {
		if err := os.Link(filepath.Join(src, fmt.Sprint(i%4)), filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("made 100000 files in %s", time.Since(made).Round(time.Millisecond))
	s, base := start(t, Config{Root: root})
	over := append(append([]string(nil), files...), "p/000/one-more.rpm")
	r := post(t, base, over)
	checkJSONError(t, "100001 files", r, 413, "limit of 100000")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	r = post(t, base, files)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if r.code != 200 {
		t.Fatalf("100000 files: %d %s", r.code, r.body)
	}
	_, info, _, err := torrentfile.Parse(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(info.UpvertedFiles()); n != 2*DefaultMaxFiles-1 {
		t.Errorf("torrent has %d entries, want %d files and their pads", n, 2*DefaultMaxFiles-1)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("100000-file batch: %d-byte body, %d-byte torrent, %s, %d MiB allocated in the process (client included)",
		len(filesBody(files)), len(r.body), took, alloc>>20)
	if alloc > 2<<30 {
		t.Errorf("building a 100000-file batch allocated %d MiB", alloc>>20)
	}
	if st := s.Stats(); st.TorrentsBuilt != 1 {
		t.Errorf("built %d torrents", st.TorrentsBuilt)
	}
}

// Slow-loris clients (headers or body trickling in) are cut off by the read
// timeouts, while other clients are served meanwhile.
func TestSlowLoris(t *testing.T) {
	root := writeTree(t, map[string][]byte{"b.rpm": []byte("bbbb")})
	_, base := start(t, Config{Root: root, ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second})
	addr := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")
	trickle := func(name, head string, drip string) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := c.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		closed := make(chan time.Duration, 1)
		go func() {
			bufio.NewReader(c).ReadString(0) // until the server closes
			closed <- time.Since(start)
		}()
		for {
			select {
			case d := <-closed:
				t.Logf("%s: cut off after %s", name, d.Round(10*time.Millisecond))
				if d > 15*time.Second {
					t.Errorf("%s: cut off only after %s", name, d)
				}
				return
			case <-time.After(300 * time.Millisecond):
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("%s: still connected after 20s", name)
			}
			c.Write([]byte(drip))
			// Meanwhile, others are served.
			if r := do(t, "GET", base+"b.rpm", "", nil); r.code != 200 {
				t.Fatalf("%s: a normal request got %d", name, r.code)
			}
		}
	}
	trickle("slow headers", "GET /b.rpm HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n")
	trickle("slow body", "POST /.pkgtorrent/v1/torrent/"+strings.Repeat("0", 64)+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"files\": [", "\"a\",")
}
