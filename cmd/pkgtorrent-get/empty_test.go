package main

import (
	"testing"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// A batch with an empty file (plain directory trees have them) is fetched
// and placed, through the agent and directly from the mirror.
func TestEmptyFile(t *testing.T) {
	root := t.TempDir()
	b := []string{"os/a.rpm", "os/empty.txt", "os/z.rpm"}
	makeTree(t, root, 41, map[string]int{"os/a.rpm": 70_000, "os/empty.txt": 0, "os/z.rpm": 3_000})
	svc := startService(t, root)
	for _, direct := range []string{"--direct=false", "--direct=true"} {
		t.Run(direct, func(t *testing.T) {
			h := e2e.NewHost(t)
			dir := t.TempDir()
			if r := h.Get(batchList(t, svc, root, dir, b), "--service", svc.url, "--http-fallback=false", direct, "--batch", "-"); r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Stderr)
			}
			sameFiles(t, root, dir, b)
		})
	}
}
