package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/batch"
)

// BenchmarkBuildCached500 measures what the service spends on a new batch of
// 500 files whose piece hashes are all cached: one POST through the real
// handler (JSON parse, path checks, stat of every file, info dictionary,
// bencoding). Each iteration is a batch the service has not seen (a
// different file is left out), so no stored torrent answers it.
func BenchmarkBuildCached500(b *testing.B) {
	root := b.TempDir()
	rng := rand.New(rand.NewSource(1))
	const n = 501
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("Packages/%c/pkg-%03d-1.0.x86_64.rpm", 'a'+i%26, i)
		p := filepath.Join(root, names[i])
		os.MkdirAll(filepath.Dir(p), 0o755)
		data := make([]byte, 1000+rng.Intn(200_000))
		rng.Read(data)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Config{Root: root, PublicURL: "http://mirror.example/"})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	post := func(files []string) {
		d, err := batch.Digest(files)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(map[string][]string{"files": files})
		req := httptest.NewRequest(http.MethodPost, api.Prefix+api.TorrentPath+d, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("POST: %d %s", rec.Code, rec.Body)
		}
	}
	post(names) // hash everything once
	read := s.Stats().HashBytesRead
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		files := make([]string, 0, n-1)
		files = append(files, names[:i%n]...)
		files = append(files, names[i%n+1:]...)
		post(files)
	}
	b.StopTimer()
	if got := s.Stats().HashBytesRead; got != read {
		b.Fatalf("cached builds read %d bytes of file data", got-read)
	}
}

// BenchmarkBuildCold measures a cold build: a new service (empty hash
// cache) builds the torrent of 300 files, hashing every one; MB/s is the
// hashing throughput.
func BenchmarkBuildCold(b *testing.B) {
	root := b.TempDir()
	rng := rand.New(rand.NewSource(1))
	const n = 300
	names := make([]string, n)
	var total int64
	for i := range names {
		names[i] = fmt.Sprintf("Packages/%c/pkg-%03d-1.0.x86_64.rpm", 'a'+i%26, i)
		p := filepath.Join(root, names[i])
		os.MkdirAll(filepath.Dir(p), 0o755)
		data := make([]byte, 1000+rng.Intn(400_000))
		total += int64(len(data))
		rng.Read(data)
		os.WriteFile(p, data, 0o644)
	}
	b.SetBytes(total)
	for i := 0; i < b.N; i++ {
		s, _ := New(Config{Root: root, PublicURL: "http://mirror.example/"})
		d, _ := batch.Digest(names)
		body, _ := json.Marshal(map[string][]string{"files": names})
		req := httptest.NewRequest(http.MethodPost, api.Prefix+api.TorrentPath+d, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Body)
		}
		s.Close()
	}
}
