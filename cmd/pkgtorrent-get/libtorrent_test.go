package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// libtorrentResult is what testdata/libtorrent_fetch.py prints.
type libtorrentResult struct {
	OK              bool    `json:"ok"`
	PayloadDownload int64   `json:"payload_download"`
	TotalDownload   int64   `json:"total_download"`
	Seconds         float64 `json:"seconds"`
	Progress        float64 `json:"progress"`
	State           string  `json:"state"`
}

// libtorrentFetch runs libtorrent 2.0 (Debian's python3-libtorrent, under
// /usr/bin/python3) on the batch torrent tb into dir: from the torrent's
// webseeds, or from peer alone (webseeds and trackers removed).
func libtorrentFetch(t *testing.T, tb []byte, dir, peer string) libtorrentResult {
	t.Helper()
	if out, err := exec.Command("/usr/bin/python3", "-c", "import libtorrent").CombinedOutput(); err != nil {
		if testkit.InCI() {
			t.Fatalf("python3-libtorrent is not installed (add it to .ci/run): %v: %s", err, out)
		}
		t.Skipf("python3-libtorrent is not installed: %s", out)
	}
	tf := filepath.Join(dir, "batch.torrent")
	if err := os.WriteFile(tf, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"testdata/libtorrent_fetch.py", tf, filepath.Join(dir, "out")}
	if peer != "" {
		args = append(args, peer)
	}
	cmd := exec.Command("/usr/bin/python3", args...)
	cmd.Env = testkit.CleanEnv()
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	out, err := cmd.Output()
	timer.Stop()
	var r libtorrentResult
	if jerr := json.Unmarshal(out, &r); jerr != nil || err != nil || !r.OK {
		t.Fatalf("libtorrent: %v, %+v: %s", err, r, out)
	}
	return r
}

// sameAsOrigin checks the files libtorrent wrote under dir/out against the
// origin's, and returns their total size and the padding's.
func sameAsOrigin(t *testing.T, tb []byte, root, dir string) (total, pads int64) {
	t.Helper()
	_, paths, lengths, _ := torrentFiles(t, tb)
	for i, p := range paths {
		if p[1] == ".pad" {
			pads += lengths[i]
			continue
		}
		rel := strings.Join(p[1:], "/")
		want := readFile(t, root, rel)
		got, err := os.ReadFile(filepath.Join(append([]string{dir, "out"}, p...)...))
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s from libtorrent differs from the origin (%v)", rel, err)
		}
		total += int64(len(want))
	}
	return total, pads
}

// libtorrent 2.0 fetches a batch torrent from the service's webseed, and
// from an agent alone. From the webseed its payload is exactly the files'
// bytes (it synthesizes padding); from a peer it requests whole 16 KiB
// blocks (a piece is several), so the padding in a file's last block crosses the wire: at most
// the torrent's padding, never a block of padding alone.
func TestInteropLibtorrent(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 61, oddSizes)
	batchNames := names(oddSizes, "os/Packages/")
	svc := startService(t, root)
	tb := batchTorrent(t, svc, batchNames)

	dir := t.TempDir()
	r := libtorrentFetch(t, tb, dir, "")
	files, pads := sameAsOrigin(t, tb, root, dir)
	t.Logf("libtorrent from the webseed: payload %d bytes (files %d), %.2fs", r.PayloadDownload, files, r.Seconds)
	if r.PayloadDownload != files {
		t.Errorf("libtorrent's payload from the webseed is %d bytes, the files %d", r.PayloadDownload, files)
	}

	seeder := e2e.NewHost(t)
	if res := seeder.Get(batchList(t, svc, root, t.TempDir(), batchNames), "--service", svc.url, "--batch", "-"); res.Code != 0 {
		t.Fatalf("seeding host: %s", res.Stderr)
	}
	port := int(seeder.Status()["peer_port"])
	up := seeder.Status()["uploaded"]
	dir = t.TempDir()
	r = libtorrentFetch(t, tb, dir, "127.0.0.1:"+itoa(port))
	sameAsOrigin(t, tb, root, dir)
	sent := seeder.Status()["uploaded"] - up
	t.Logf("libtorrent from an agent: payload %d bytes (files %d, padding %d), the agent uploaded %.0f, %.2fs", r.PayloadDownload, files, pads, sent, r.Seconds)
	if r.PayloadDownload < files || r.PayloadDownload > files+pads || sent <= 0 {
		t.Errorf("libtorrent's payload from the agent is %d bytes (files %d, padding %d), the agent uploaded %.0f", r.PayloadDownload, files, pads, sent)
	}
}
