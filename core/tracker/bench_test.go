package tracker

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkAnnounce measures one re-announce by a member of a swarm of
// 1k and 30k peers (each from its own address, half of them seeders). The
// cost per announce should not depend on the size of the swarm.
func BenchmarkAnnounce(b *testing.B) {
	for _, n := range []int{1000, 30000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			tr := New(0)
			info := strings.Repeat("\xcc", 20)
			reqs := make([]*httptestRequest, n)
			for i := range n {
				left := "1"
				if i%2 == 0 {
					left = "0"
				}
				q := url.Values{
					"info_hash": {info}, "peer_id": {fmt.Sprintf("-BE0001-%012d", i)},
					"port": {"6881"}, "left": {left}, "compact": {"1"},
				}
				reqs[i] = &httptestRequest{
					target: "/announce?" + q.Encode(),
					remote: fmt.Sprintf("10.%d.%d.%d:40000", i>>16&255, i>>8&255, i&255),
				}
				reqs[i].do(tr)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				rec := reqs[(i*7919)%n].do(tr)
				if rec.Code != 200 || rec.Body.Len() == 0 {
					b.Fatalf("announce answered %d %q", rec.Code, rec.Body)
				}
			}
		})
	}
}

type httptestRequest struct{ target, remote string }

func (r *httptestRequest) do(tr *Tracker) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", r.target, nil)
	req.RemoteAddr = r.remote
	rec := httptest.NewRecorder()
	tr.ServeAnnounce(rec, req)
	return rec
}
