package main

import (
	"fmt"
	"testing"
)

// Two hosts fetch one batch at once from a mirror eight times faster than
// their uploads (the mirror alone: 2 s for both; a peer: 8 s for half the
// batch). With the catch-up rule (the default) the webseeds take the
// pieces the peer holds but is slow to send once each host has its half;
// without it, each host waits for half the batch from its peer.
func TestCatchUpTwoHosts(t *testing.T) {
	// A batch per round: the first round's agents seed theirs.
	root := t.TempDir()
	sizes := map[string]int{}
	for _, round := range []string{"off", "on"} {
		for i := range 8 {
			sizes[fmt.Sprintf("os/Packages/%s/pkg-%d.rpm", round, i)] = 1<<20 + 1000*i
		}
	}
	makeTree(t, root, 7, sizes)
	const total = 8<<20 + 28000
	svc := startService(t, root, "--origin-rate-limit", fmt.Sprint(total))
	fromPeers := func(catchUp bool) float64 {
		batchNames := names(sizes, "os/Packages/off/")
		if catchUp {
			batchNames = names(sizes, "os/Packages/on/")
		}
		most := 0.0
		for i, r := range burst(t, svc, root, batchNames, 2, "--peer-grace", "5s",
			"--upload-rate-limit", fmt.Sprint(total/16), fmt.Sprintf("--webseed-catch-up=%t", catchUp)) {
			share := float64(r.BytesFromPeers) / float64(r.Bytes)
			t.Logf("catch-up %t, host %d: %.2f of the batch from its peer", catchUp, i, share)
			most = max(most, share)
		}
		return most
	}
	// Without the rule first: it shows the peers do hold up the fetch.
	if off := fromPeers(false); off < 0.35 {
		t.Fatalf("without catch-up a host got at most %.2f of the batch from its peer: the case does not hold up the hosts", off)
	}
	if on := fromPeers(true); on > 0.3 {
		t.Errorf("with catch-up a host got %.2f of the batch from a peer eight times slower than the mirror, want at most 0.3", on)
	}
}
