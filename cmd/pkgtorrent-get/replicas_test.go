package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// Several replicas of the service (issue 12): two pkgtorrent-service
// processes over one tree, each with its own public URL and so its own
// webseed, announcing one shared opentracker. A host sent to replica 1 and a
// host sent to replica 2 fetch the same batch in one swarm: the replicas'
// torrents carry byte-identical info dictionaries (one info hash), and with
// replica 2's webseed and files down the second host gets the batch from
// the first.
func TestReplicasOneSwarm(t *testing.T) {
	testkit.NeedTool(t, "opentracker")
	root := t.TempDir()
	makeTree(t, root, 14, oddSizes)
	batchNames := names(oddSizes, "os/")

	var r1, r2 service
	var p2 *faultProxy
	var trackerURL, ih string
	for try := 0; ; try++ { // the port may be taken before opentracker binds it
		port := freePort(t)
		trackerURL = fmt.Sprintf("http://127.0.0.1:%d/", port)
		r1 = startService(t, root, "--tracker", trackerURL+"announce")
		r2, p2 = proxiedService(t, root, "--tracker", trackerURL+"announce")
		tb1, tb2 := batchTorrent(t, r1, batchNames), batchTorrent(t, r2, batchNames)
		mi1, _, _, err := torrentfile.Parse(tb1)
		if err != nil {
			t.Fatal(err)
		}
		mi2, _, _, err := torrentfile.Parse(tb2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mi1.InfoBytes, mi2.InfoBytes) {
			t.Fatalf("the replicas' info dictionaries differ:\n%q\n%q", mi1.InfoBytes, mi2.InfoBytes)
		}
		if mi1.HashInfoBytes() != mi2.HashInfoBytes() {
			t.Fatalf("info hashes differ: %s, %s", mi1.HashInfoBytes().HexString(), mi2.HashInfoBytes().HexString())
		}
		for i, mi := range []string{mi1.Announce, mi2.Announce} {
			if mi != trackerURL+"announce" {
				t.Fatalf("replica %d announces %q, want %q", i+1, mi, trackerURL+"announce")
			}
		}
		// Outside the info dictionary each replica names its own webseed.
		if len(mi1.UrlList) != 1 || len(mi2.UrlList) != 1 || mi1.UrlList[0] == mi2.UrlList[0] {
			t.Fatalf("webseeds: replica 1 %q, replica 2 %q: want one each, distinct", mi1.UrlList, mi2.UrlList)
		}
		ih = string(mi1.HashInfoBytes().Bytes())
		t.Logf("replicas %s and %s: info hash %s (%d info bytes identical); webseeds %s, %s",
			r1.url, r2.url, mi1.HashInfoBytes().HexString(), len(mi1.InfoBytes), mi1.UrlList[0], mi2.UrlList[0])
		if startOpentracker(t, port, []string{mi1.HashInfoBytes().HexString()}) {
			break
		}
		if try == 2 {
			t.Fatal("opentracker did not start")
		}
	}
	scrape := trackerURL + "scrape"
	waitSeeders := func(n int) int {
		var seeders int
		testkit.Poll(15*time.Second, func() bool {
			seeders, _ = scrapeCounts(t, scrape, ih)
			return seeders >= n
		})
		return seeders
	}

	// Host A through replica 1; it keeps seeding (--seed-time).
	a, da := e2e.NewHost(t), t.TempDir()
	ra := a.Get(batchList(t, r1, root, da, batchNames), "--service", r1.url, "--batch", "-")
	if ra.Code != 0 {
		t.Fatalf("host A (replica 1): exit %d: %s", ra.Code, ra.Stderr)
	}
	sameFiles(t, root, da, batchNames)
	t.Logf("host A (replica 1): %d bytes, %d from peers, %d from webseed, %.2fs", ra.Bytes, ra.BytesFromPeers, ra.BytesFromWebseed, ra.Seconds)
	if n := waitSeeders(1); n < 1 {
		t.Fatalf("opentracker does not know host A as a seeder (scrape: %d seeders)", n)
	}

	// Host B through replica 2, whose webseed and files are down: only a
	// peer of the same swarm can deliver.
	p2.setBlock(isWebseedOrFile)
	st0 := r2.stats(t)
	b, db := e2e.NewHost(t), t.TempDir()
	rb := b.Get(batchList(t, r2, root, db, batchNames), "--service", r2.url, "--http-fallback=false", "--batch", "-")
	if rb.Code != 0 {
		t.Fatalf("host B (replica 2): exit %d: %s", rb.Code, rb.Stderr)
	}
	sameFiles(t, root, db, batchNames)
	st := r2.stats(t)
	t.Logf("host B (replica 2): %d bytes, %d from peers, %d from webseed, %.2fs; replica 2 sent %.0f file bytes",
		rb.Bytes, rb.BytesFromPeers, rb.BytesFromWebseed, rb.Seconds, st["file_bytes_sent"]-st0["file_bytes_sent"])
	// (Bytes from peers count padding too.)
	if rb.BytesFromPeers == 0 || rb.BytesFromWebseed != 0 {
		t.Fatalf("host B took %d bytes from peers and %d from the webseed, of %d", rb.BytesFromPeers, rb.BytesFromWebseed, rb.Bytes)
	}
	if n := waitSeeders(2); n < 2 {
		t.Errorf("opentracker knows %d seeders of the batch, want both hosts", n)
	} else {
		t.Logf("opentracker: %d seeders of %x", n, ih)
	}
}
