package service

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// scrapeMetrics reads the service's Prometheus text exposition into a map
// from series (name with labels, as printed) to value.
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	r := do(t, "GET", api.MetricsURL(base), "", nil)
	if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", r.code, r.header.Get("Content-Type"))
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

func TestMetrics(t *testing.T) {
	a, b := testkit.RandBytes(2*pl+3, 1), testkit.RandBytes(pl/2, 2)
	// A repository file named "metrics" at the root stays a file: the
	// metrics live under the API prefix.
	root := writeTree(t, map[string][]byte{"pkgs/a.rpm": a, "pkgs/b.rpm": b, "metrics": []byte("a file")})
	_, base := start(t, Config{Root: root})
	files := []string{"pkgs/a.rpm", "pkgs/b.rpm"}
	if r := post(t, base, files); r.code != 200 {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", api.TorrentURL(base, digest(t, files)), "", nil); r.code != 200 {
		t.Fatalf("GET torrent: %d", r.code)
	}
	ws := api.WebseedURL(base) + "pkgtorrent-0123456789abcdef/"
	if r := do(t, "GET", ws+"pkgs/a.rpm", "", nil); r.code != 200 || !bytes.Equal(r.body, a) {
		t.Fatalf("webseed GET: %d", r.code)
	}
	if r := do(t, "GET", base+"pkgs/b.rpm", "", nil); r.code != 200 {
		t.Fatalf("file GET: %d", r.code)
	}
	if r := do(t, "GET", base+"metrics", "", nil); r.code != 200 || string(r.body) != "a file" {
		t.Fatalf("GET /metrics: %d %q, want the repository file", r.code, r.body)
	}
	do(t, "GET", base+"pkgs/none.rpm", "", nil)
	do(t, "GET", api.TorrentURL(base, strings.Repeat("0", 64)), "", nil)

	m := scrapeMetrics(t, base)
	want := map[string]float64{
		"pkgtorrent_service_torrents_built_total":                          1,
		"pkgtorrent_service_torrent_cache_hits_total":                      1,
		"pkgtorrent_service_torrent_requests_total":                        3,
		"pkgtorrent_service_hash_cache_hits_total":                         0,
		"pkgtorrent_service_hash_bytes_read_total":                         float64(len(a) + len(b)),
		"pkgtorrent_service_webseed_bytes_sent_total":                      float64(len(a)),
		"pkgtorrent_service_file_bytes_sent_total":                         float64(len(a) + len(b) + len("a file")),
		"pkgtorrent_service_pad_bytes_sent_total":                          0,
		"pkgtorrent_service_torrent_build_seconds_count":                   1,
		"pkgtorrent_service_builds_running":                                0,
		"pkgtorrent_service_builds_waiting":                                0,
		"pkgtorrent_service_builds_abandoned_total":                        0,
		"pkgtorrent_service_hash_cache_files":                              2,
		"pkgtorrent_service_hash_cache_evictions_total":                    0,
		`pkgtorrent_service_requests_total{code="200",handler="file"}`:     2,
		`pkgtorrent_service_requests_total{code="404",handler="file"}`:     1,
		`pkgtorrent_service_requests_total{code="200",handler="torrent"}`:  2,
		`pkgtorrent_service_requests_total{code="412",handler="torrent"}`:  1,
		`pkgtorrent_service_requests_total{code="200",handler="webseed"}`:  1,
		`pkgtorrent_service_requests_total{code="200",handler="announce"}`: 0,
		`pkgtorrent_service_torrent_build_seconds_bucket{le="+Inf"}`:       1,
	}
	for series, v := range want {
		if got, ok := m[series]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
		}
	}
	if m["pkgtorrent_service_hash_cache_bytes"] <= 0 {
		t.Error("hash cache bytes not reported")
	}
	if m["process_cpu_seconds_total"] <= 0 && m["go_goroutines"] <= 0 {
		t.Error("no process or Go runtime metrics")
	}
}

func TestRequestKind(t *testing.T) {
	for p, want := range map[string]string{
		"/pkgs/a.rpm":                     "file",
		"/metrics":                        "file",
		"/.pkgtorrent/v1/metrics":         "metrics",
		"/.pkgtorrent/v1/stats":           "stats",
		"/.pkgtorrent/v1/announce":        "announce",
		"/.pkgtorrent/v1/scrape":          "scrape",
		"/.pkgtorrent/v1/webseed/n/x.rpm": "webseed",
		"/.pkgtorrent/v1/torrent/00":      "torrent",
		"/.pkgtorrent/v2/torrent/00":      "other",
		"/.pkgtorrent":                    "other",
		"/.pkgtorrent/v1/nothing":         "other",
		"/.pkgtorrentish/file":            "file",
	} {
		if got := requestKind(p); got != want {
			t.Errorf("requestKind(%q) = %q, want %q", p, got, want)
		}
	}
	for _, p := range api.Paths {
		if got := requestKind(api.Prefix + p); got == "other" || got == "file" {
			t.Errorf("API endpoint %s has no route (kind %q)", p, got)
		}
	}
}
