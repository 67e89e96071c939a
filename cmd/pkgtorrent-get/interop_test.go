package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
	"github.com/pkgtorrent/pkgtorrent/internal/testkit/e2e"
)

// Interoperability with the stock BitTorrent programs of Debian (aria2,
// transmission-cli, opentracker), all on 127.0.0.1.

// freePort returns a port free for TCP and UDP on 127.0.0.1 for programs
// that cannot take port 0 (it may be taken again before they bind it:
// callers retry).
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// batchTorrent has the service build the torrent of names (GET, then
// POST on 412, as any client would) and returns it.
func batchTorrent(t *testing.T, svc service, names []string) []byte {
	t.Helper()
	tb, err := api.Torrent(context.Background(), nil, svc.url, names)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// torrentFiles lists the torrent's files: path (info name first) and
// length, pads included.
func torrentFiles(t *testing.T, tb []byte) (name string, paths [][]string, lengths []int64, ih string) {
	t.Helper()
	mi, info, _, err := torrentfile.Parse(tb)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range info.UpvertedFiles() {
		paths = append(paths, append([]string{info.BestName()}, f.BestPath()...))
		lengths = append(lengths, f.Length)
	}
	return info.BestName(), paths, lengths, string(mi.HashInfoBytes().Bytes())
}

// aria2c, given a batch torrent from the service, downloads it from a
// pkgtorrent agent (seeding it after a pkgtorrent-get) and the webseed.
func TestInteropAria2cDownloads(t *testing.T) {
	aria2c := testkit.NeedTool(t, "aria2c")
	root := t.TempDir()
	makeTree(t, root, 11, oddSizes)
	batchNames := names(oddSizes, "os/Packages/")
	var total int64
	for _, n := range batchNames {
		total += int64(oddSizes[n])
	}
	// Two replicas of the service over the tree, sharing the first one's
	// tracker: their torrents of a batch have one info hash (announce and
	// webseed URLs are outside the info dictionary). The seeding host gets
	// the files through the fast one; aria2c gets the torrent of the slow
	// one (about 20 s for the batch from its webseed alone).
	fast := startService(t, root)
	svc := startService(t, root, "--origin-rate-limit", fmt.Sprint(total/20), "--tracker", api.AnnounceURL(fast.url))
	seeder := e2e.NewHost(t)
	if r := seeder.Get(batchList(t, fast, root, t.TempDir(), batchNames), "--service", fast.url, "--batch", "-"); r.Code != 0 {
		t.Fatalf("seeding host: %s", r.Stderr)
	}
	upBefore := seeder.Status()["uploaded"]
	st0 := svc.stats(t)

	tb := batchTorrent(t, svc, batchNames)
	_, _, _, ih := torrentFiles(t, tb)
	if seeders, leechers := scrapeCounts(t, api.ScrapeURL(fast.url), ih); seeders+leechers < 1 {
		t.Fatalf("the tracker does not know the seeding host: %d seeders, %d leechers", seeders, leechers)
	}
	dir := t.TempDir()
	tf := filepath.Join(dir, "batch.torrent")
	if err := os.WriteFile(tf, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var run []byte
	var err error
	for try := 0; try < 3; try++ { // the listen port may be taken meanwhile
		port := freePort(t)
		cmd := exec.Command(aria2c, "--dir", out, "--seed-time=0",
			"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
			"--disable-ipv6=true", fmt.Sprintf("--listen-port=%d", port), "--bt-stop-timeout=120",
			"--check-integrity=true", "--file-allocation=none", "--summary-interval=0",
			"--console-log-level=warn", "--no-conf=true", tf)
		done := make(chan struct{})
		timer := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
		run, err = cmd.CombinedOutput()
		timer.Stop()
		close(done)
		if err == nil || !strings.Contains(string(run), "bind") {
			break
		}
	}
	if err != nil {
		t.Fatalf("aria2c: %v\n%s", err, run)
	}
	name, paths, lengths, _ := torrentFiles(t, tb)
	var pads, padFiles int
	for i, p := range paths {
		got := filepath.Join(append([]string{out}, p...)...)
		if p[1] == torrentfile.PadDir {
			pads++
			if fi, err := os.Stat(got); err == nil && fi.Size() == lengths[i] {
				padFiles++
			}
			continue
		}
		rel := strings.Join(p[1:], "/")
		want, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(got)
		if err != nil {
			t.Fatalf("aria2c did not write %s: %v", rel, err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("%s from aria2c differs from the origin", rel)
		}
	}
	up := seeder.Status()["uploaded"] - upBefore
	st := svc.stats(t)
	t.Logf("aria2c: %s, %d files (%d bytes) identical; the agent uploaded %.0f bytes, the webseed sent %.0f file bytes and %.0f pad bytes; aria2c wrote %d of %d pad files to disk",
		name, len(batchNames), total, up, st["webseed_bytes_sent"]-st0["webseed_bytes_sent"], st["pad_bytes_sent"]-st0["pad_bytes_sent"], padFiles, pads)
	if up == 0 {
		t.Errorf("aria2c took nothing from the pkgtorrent agent; aria2c output:\n%s", run)
	}
}

// transmissionSettings keep transmission-cli on loopback, with no DHT,
// local peer discovery, PEX, uTP or port mapping.
func transmissionSettings(port int) []byte {
	b, _ := json.Marshal(map[string]any{
		"bind-address-ipv4":          "127.0.0.1",
		"bind-address-ipv6":          "::1",
		"dht-enabled":                false,
		"lpd-enabled":                false,
		"pex-enabled":                false,
		"utp-enabled":                false,
		"port-forwarding-enabled":    false,
		"peer-port":                  port,
		"peer-port-random-on-start":  false,
		"rpc-enabled":                false,
		"blocklist-enabled":          false,
		"encryption":                 1,
		"ratio-limit-enabled":        false,
		"idle-seeding-limit-enabled": false,
		"message-level":              1,
		"speed-limit-up-enabled":     false,
		"speed-limit-down-enabled":   false,
		"alt-speed-enabled":          false,
		"upload-slots-per-torrent":   50,
	})
	return b
}

// scrapeCounts asks an HTTP tracker for the seeders and leechers of ih
// (-1, -1 when it does not answer or does not know ih). A 0x20 byte of ih
// goes out as %20: opentracker does not decode +.
func scrapeCounts(t *testing.T, scrapeURL, ih string) (complete, incomplete int) {
	t.Helper()
	resp, err := http.Get(scrapeURL + "?info_hash=" + strings.ReplaceAll(url.QueryEscape(ih), "+", "%20"))
	if err != nil {
		return -1, -1
	}
	defer resp.Body.Close()
	var sr struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
		} `bencode:"files"`
	}
	if err := bencode.NewDecoder(resp.Body).Decode(&sr); err != nil {
		return -1, -1
	}
	f, ok := sr.Files[ih]
	if !ok {
		return -1, -1
	}
	return f.Complete, f.Incomplete
}

// pkgtorrent-get downloads a batch seeded only by transmission-cli, with
// the webseed kept out (peers deliver, so it never joins within the peer
// grace): no byte of it comes from the service.
func TestInteropFromTransmission(t *testing.T) {
	tcli := testkit.NeedTool(t, "transmission-cli")
	root := t.TempDir()
	makeTree(t, root, 12, oddSizes)
	batchNames := names(oddSizes, "os/")
	// A short announce interval: transmission announces before its
	// check of the data ends, and tells the tracker it is a seeder at
	// its next announce.
	svc := startService(t, root, "--tracker-interval", "2s")
	tb := batchTorrent(t, svc, batchNames)
	name, paths, lengths, ih := torrentFiles(t, tb)

	// The seeder's data: the files, and the pad files as zeros
	// (transmission does not know BEP 47 pad files and verifies them).
	seedDir := t.TempDir()
	for i, p := range paths {
		dst := filepath.Join(append([]string{seedDir}, p...)...)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, lengths[i])
		if p[1] != torrentfile.PadDir {
			var err error
			if data, err = os.ReadFile(filepath.Join(root, strings.Join(p[1:], "/"))); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := t.TempDir()
	tf := filepath.Join(conf, "batch.torrent")
	if err := os.WriteFile(tf, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	if err := os.WriteFile(filepath.Join(conf, "settings.json"), transmissionSettings(port), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tcli, "-g", conf, "-w", seedDir, "-p", fmt.Sprint(port), "-M", "-B", "-U", "-D", "-v", tf)
	var tlog lockedBuffer
	cmd.Stdout, cmd.Stderr = &tlog, &tlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("transmission-cli output (tail):\n%s", tlog.tail(3000))
		}
	})
	// Wait until the tracker knows transmission as a seeder.
	scrape := api.ScrapeURL(svc.url)
	testkit.WaitFor(t, "transmission-cli to announce itself as a seeder of "+name, 3*time.Minute, func() bool {
		n, _ := scrapeCounts(t, scrape, ih)
		return n >= 1
	})
	before := svc.stats(t)
	h := e2e.NewHost(t)
	dir := t.TempDir()
	r := h.Get(batchList(t, svc, root, dir, batchNames), "--service", svc.url, "--batch", "-", "--peer-grace", "5m", "--stall-timeout", "5m")
	if r.Code != 0 {
		t.Fatalf("pkgtorrent-get: exit %d: %s", r.Code, r.Stderr)
	}
	sameFiles(t, root, dir, batchNames)
	after := svc.stats(t)
	sent := after["file_bytes_sent"] - before["file_bytes_sent"] + after["pad_bytes_sent"] - before["pad_bytes_sent"]
	t.Logf("from transmission-cli: %d bytes in %.2fs, %d from peers, %d from webseed; the service sent %.0f bytes", r.Bytes, r.Seconds, r.BytesFromPeers, r.BytesFromWebseed, sent)
	if r.BytesFromWebseed != 0 || sent != 0 || r.BytesFromPeers < r.Bytes {
		t.Fatalf("webseed took part: %d bytes from webseed, service sent %.0f; %d of %d from peers", r.BytesFromWebseed, sent, r.BytesFromPeers, r.Bytes)
	}
}

// lockedBuffer is a bytes.Buffer safe for a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	return s[max(0, len(s)-n):]
}

// startOpentracker runs opentracker on 127.0.0.1:port, accepting the info
// hashes (hex) of whitelist, and returns false if it did not come up.
// Debian's opentracker is built with an access whitelist: it serves only
// the listed torrents.
func startOpentracker(t *testing.T, port int, whitelist []string) bool {
	t.Helper()
	otBin := testkit.NeedTool(t, "opentracker")
	// Run as root, opentracker reads the whitelist as the user nobody,
	// after a chroot to -d ("/" keeps the absolute path valid): the file
	// must be readable by all (t.TempDir() is not).
	dir, err := os.MkdirTemp("", "opentracker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wl := filepath.Join(dir, "whitelist")
	if err := os.WriteFile(wl, []byte(strings.Join(whitelist, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var otLog lockedBuffer
	ot := exec.Command(otBin, "-i", "127.0.0.1", "-p", fmt.Sprint(port), "-P", fmt.Sprint(port), "-w", wl, "-d", "/")
	ot.Stdout, ot.Stderr = &otLog, &otLog
	if err := ot.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { ot.Wait(); close(exited) }()
	var exitedEarly bool
	up := testkit.Poll(10*time.Second, func() bool {
		select {
		case <-exited:
			exitedEarly = true
			return true
		default:
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if exitedEarly {
		t.Logf("opentracker on port %d exited:\n%s", port, otLog.tail(2000))
		return false
	}
	if !up {
		ot.Process.Kill()
		<-exited
		return false
	}
	t.Cleanup(func() {
		ot.Process.Kill()
		<-exited
	})
	return true
}

// With the service announcing an external opentracker (embedded tracker
// off), three clients fetching at once trade pieces through it.
func TestOpentrackerBurst(t *testing.T) {
	testkit.NeedTool(t, "opentracker")
	root := t.TempDir()
	makeTree(t, root, 13, oddSizes)
	batchNames := names(oddSizes, "os/Packages/")
	var total int64
	for _, n := range batchNames {
		total += int64(oddSizes[n])
	}
	var svc service
	var trackerURL string
	var tb []byte
	for try := 0; ; try++ { // the port may be taken before opentracker binds it
		port := freePort(t)
		trackerURL = fmt.Sprintf("http://127.0.0.1:%d/", port)
		svc = startService(t, root, "--tracker", trackerURL+"announce", "--origin-rate-limit", fmt.Sprint(total/4))
		tb = batchTorrent(t, svc, batchNames)
		mi, _, _, err := torrentfile.Parse(tb)
		if err != nil {
			t.Fatal(err)
		}
		if mi.Announce != trackerURL+"announce" {
			t.Fatalf("torrent announces %q, want %q", mi.Announce, trackerURL+"announce")
		}
		if startOpentracker(t, port, []string{mi.HashInfoBytes().HexString()}) {
			break
		}
		if try == 2 {
			t.Fatal("opentracker did not start")
		}
	}
	if resp, err := http.Get(api.AnnounceURL(svc.url)); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("embedded tracker still served with --tracker: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	var peers int64
	for _, r := range burst(t, svc, root, batchNames, 3) {
		peers += r.BytesFromPeers
	}
	if peers == 0 {
		t.Fatal("no bytes came from peers through opentracker")
	}
	// The agents' webseed policy scrapes the tracker: opentracker answers
	// the scrape convention, and knows the three hosts as seeders now.
	_, _, _, ih := torrentFiles(t, tb)
	var seeders, leechers int
	testkit.Poll(30*time.Second, func() bool {
		seeders, leechers = scrapeCounts(t, trackerURL+"scrape", ih)
		return seeders >= 3
	})
	t.Logf("opentracker: %d bytes from peers in total; scrape says %d seeders, %d leechers", peers, seeders, leechers)
	if seeders+leechers < 1 {
		t.Errorf("opentracker scrape does not know the swarm: %d seeders, %d leechers", seeders, leechers)
	}
}
