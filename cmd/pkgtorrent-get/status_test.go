package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// metricValue returns the value of an unlabelled series in a Prometheus
// text exposition.
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in\n%s", name, text)
	return 0
}

// status reports bytes and the p2p share; the agent's metrics (over
// metrics-listen and over the socket) say the same.
func TestStatusAndMetrics(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 7, oddSizes)
	batchNames := names(oddSizes, "os/Packages/")
	svc := startService(t, root)
	first, second := e2e.NewHost(t), e2e.NewHost(t)
	d1, d2 := t.TempDir(), t.TempDir()
	if r := first.Get(batchList(t, svc, root, d1, batchNames), "--service", svc.url, "--batch", "-"); r.Code != 0 {
		t.Fatalf("first client: %s", r.Stderr)
	}
	r := second.Get(batchList(t, svc, root, d2, batchNames), "--service", svc.url, "--batch", "-", "--metrics-listen", "127.0.0.1:0", "--peer-grace", "1m")
	if r.Code != 0 {
		t.Fatalf("second client: %s", r.Stderr)
	}
	var st struct {
		Torrents   int     `json:"torrents"`
		Seeding    int     `json:"seeding"`
		Uploaded   int64   `json:"uploaded"`
		Downloaded int64   `json:"downloaded"`
		FromPeers  int64   `json:"from_peers"`
		FromWeb    int64   `json:"from_webseed"`
		P2PShare   float64 `json:"p2p_share"`
		MetricsURL string  `json:"metrics_url"`
	}
	out := second.Output("status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	t.Logf("second host status: %s", out)
	if st.Torrents != 1 || st.Seeding != 1 || st.FromPeers != r.BytesFromPeers || st.FromPeers == 0 ||
		st.Downloaded != st.FromPeers+st.FromWeb || st.Downloaded < r.Bytes {
		t.Errorf("status %+v after a fetch of %d bytes, %d from peers", st, r.Bytes, r.BytesFromPeers)
	}
	if want := float64(st.FromPeers) / float64(st.Downloaded); st.P2PShare != want {
		t.Errorf("p2p_share %v, want %v", st.P2PShare, want)
	}
	if !strings.HasPrefix(st.MetricsURL, "http://127.0.0.1:") {
		t.Fatalf("metrics_url %q", st.MetricsURL)
	}
	resp, err := http.Get(st.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	if got := metricValue(t, text, "pkgtorrent_agent_bytes_from_peers_total"); got != float64(st.FromPeers) {
		t.Errorf("pkgtorrent_agent_bytes_from_peers_total %v, status says %d", got, st.FromPeers)
	}
	if got := metricValue(t, text, "pkgtorrent_agent_torrents_seeding"); got != 1 {
		t.Errorf("pkgtorrent_agent_torrents_seeding %v", got)
	}

	// The first host served the second: its upload shows in the text
	// status and in the metrics read through the socket.
	text = first.Output("metrics")
	up := metricValue(t, text, "pkgtorrent_agent_bytes_uploaded_total")
	if up == 0 {
		t.Error("the first host uploaded nothing")
	}
	if got := metricValue(t, text, "pkgtorrent_agent_bytes_from_webseeds_total"); got < float64(r.Bytes) {
		t.Errorf("first host: %v bytes from webseeds, want the whole batch %d", got, r.Bytes)
	}
	human := first.Output("status")
	t.Logf("first host status:\n%s", human)
	for _, w := range []string{"seeding", "uploaded:", "from peers", "peer-to-peer"} {
		if !strings.Contains(human, w) {
			t.Errorf("text status lacks %q", w)
		}
	}
}
