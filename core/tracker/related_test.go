package tracker

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// announceIH announces peerID at port for the torrent ihx and returns the
// compact peers it was sent.
func announceIH(t *testing.T, base, ihx, peerID string, port int, left int64) []string {
	t.Helper()
	q := url.Values{
		"info_hash": {ihx}, "peer_id": {peerID}, "port": {fmt.Sprint(port)},
		"left": {fmt.Sprint(left)}, "compact": {"1"},
	}
	var r announceResp
	get(t, base+"/announce?"+q.Encode(), &r)
	if r.Failure != "" {
		t.Fatalf("announce: %s", r.Failure)
	}
	return compactPeers(t, r.Peers)
}

// A peer still fetching batch B is also sent the agents of the batches
// related to B (sharing files with it), not their stock clients; a seeder
// of B is not; a scrape of B counts the related peers under RelatedKey.
func TestRelatedPeers(t *testing.T) {
	tr := New(0)
	a, b := strings.Repeat("A", 20), strings.Repeat("B", 20)
	tr.SetRelated(func(ih [20]byte) [][20]byte {
		if string(ih[:]) == b {
			return [][20]byte{[20]byte([]byte(a)), [20]byte([]byte(b))}
		}
		return nil
	})
	srv := newServer(t, tr)
	agentID := func(n int) string { return AgentIDPrefix + fmt.Sprintf("%012d", n) }
	announceIH(t, srv.URL, a, agentID(1), 1001, 0)                         // agent seeding A
	announceIH(t, srv.URL, a, "-TR3000-"+strings.Repeat("x", 12), 1002, 0) // stock client seeding A
	got := announceIH(t, srv.URL, b, agentID(3), 1003, 500)
	if !slices.Equal(got, []string{"127.0.0.1:1001"}) {
		t.Errorf("a leecher of B was sent %v, want the agent of A only", got)
	}
	if got := announceIH(t, srv.URL, b, agentID(4), 1004, 0); !slices.Equal(got, []string{"127.0.0.1:1003"}) {
		t.Errorf("a seeder of B was sent %v, want only B's leecher", got)
	}
	// A's own peers get nothing of B's related set (A has none).
	if got := announceIH(t, srv.URL, a, agentID(5), 1005, 10); slices.Contains(got, "127.0.0.1:1003") {
		t.Errorf("a peer of A was sent B's peers: %v", got)
	}
	var sr struct {
		Files map[string]map[string]int64 `bencode:"files"`
	}
	get(t, srv.URL+"/scrape?"+url.Values{"info_hash": {b}}.Encode(), &sr)
	if f := sr.Files[b]; f["complete"] != 1 || f["incomplete"] != 1 || f[RelatedKey] != 3 {
		t.Errorf("scrape of B = %v, want 1 complete, 1 incomplete, 3 related", f)
	}
}
