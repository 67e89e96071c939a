package agent

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"golang.org/x/time/rate"

	"github.com/pkgtorrent/pkgtorrent/core/store"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// Tests of the engine patches the agent relies on (third_party/torrent),
// through the engine's public API, with real clients on loopback.

func engineConfig(t *testing.T) *torrent.ClientConfig {
	cfg := torrent.NewDefaultClientConfig()
	cfg.ListenHost = torrent.LoopbackListenHost
	cfg.ListenPort = 0
	cfg.DataDir = t.TempDir()
	cfg.NoDHT = true
	cfg.DisableTrackers = true
	cfg.NoDefaultPortForwarding = true
	cfg.DisableAcceptRateLimiting = true
	cfg.DisableUTP = true
	cfg.Seed = true
	cfg.Slogger = slog.New(slog.DiscardHandler)
	return cfg
}

// seedTorrent writes a random file of n bytes into dir and returns its
// single-file torrent (pkgtorrent's piece length).
func seedTorrent(t *testing.T, dir string, n int) *metainfo.MetaInfo {
	t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := filepath.Join(dir, "blob")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	info := metainfo.Info{PieceLength: torrentfile.PieceLength}
	if err := info.BuildFromFilePath(p); err != nil {
		t.Fatal(err)
	}
	mi := &metainfo.MetaInfo{}
	var err error
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		t.Fatal(err)
	}
	return mi
}

// countingServer serves dir and counts the body bytes it sends.
func countingServer(t *testing.T, dir string) (*httptest.Server, *atomic.Int64) {
	var sent atomic.Int64
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.ServeHTTP(countingWriter{w, &sent}, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &sent
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// With SetWebseedsLeavePeerPieces on, a leecher connected to a seeder takes
// nothing from the webseed: every piece is the peer's.
func TestWebseedsLeavePeerPieces(t *testing.T) {
	seederAndWebseed(t, false)
}

// With SetWebseedsLeaveOnlyRequestedPeerPieces too, the webseed may take
// pieces the seeder is not sending; the data is right either way.
func TestWebseedsLeaveOnlyRequestedPeerPieces(t *testing.T) {
	seederAndWebseed(t, true)
}

func seederAndWebseed(t *testing.T, onlyRequested bool) {
	const size = 4 << 20
	seedDir := t.TempDir()
	mi := seedTorrent(t, seedDir, size)
	srv, sent := countingServer(t, seedDir)

	scfg := engineConfig(t)
	scfg.DataDir = seedDir
	seeder, st := addTorrent(t, scfg, mi)
	seeding(t, st)

	lcfg := engineConfig(t)
	lcfg.UploadWhileLeeching = true
	lcfg.WebseedSliceOrderSeed = 12345
	_, lt := addTorrent(t, lcfg, mi)
	lt.SetWebseedsLeaveOnlyRequestedPeerPieces(onlyRequested)
	lt.SetWebseedsLeavePeerPieces(true)
	if lt.PeersHaveWantedPieces() {
		t.Error("no peer, yet PeersHaveWantedPieces")
	}
	lt.DownloadAll()
	lt.AddClientPeer(seeder)
	waitFor(t, "the seeder's pieces to be known", lt.PeersHaveWantedPieces)
	lt.AddWebSeeds([]string{srv.URL + "/"})
	waitFor(t, "the download", lt.Complete().Bool)
	stats := lt.Stats()
	t.Logf("webseed sent %d bytes, peer %d", sent.Load(), stats.PeerConns.BytesReadUsefulData.Int64())
	if !onlyRequested {
		if n := sent.Load(); n != 0 {
			t.Errorf("the webseed sent %d bytes; every piece was the peer's", n)
		}
		if got := stats.PeerConns.BytesReadUsefulData.Int64(); got != size {
			t.Errorf("%d bytes from the peer, want %d", got, size)
		}
	}
	sameData(t, lt, seedDir)
}

// Without a peer, SetWebseedsLeavePeerPieces leaves the webseed every piece,
// in the order of WebseedSliceOrderSeed, and the data is right.
func TestWebseedAlone(t *testing.T) {
	const size = 3<<20 + 12345
	seedDir := t.TempDir()
	mi := seedTorrent(t, seedDir, size)
	srv, sent := countingServer(t, seedDir)
	cfg := engineConfig(t)
	cfg.WebseedSliceOrderSeed = 99
	_, lt := addTorrent(t, cfg, mi)
	lt.SetWebseedsLeavePeerPieces(true)
	if lt.PeersHaveWantedPieces() {
		t.Error("no peer, yet PeersHaveWantedPieces")
	}
	lt.AddWebSeeds([]string{srv.URL + "/"})
	lt.DownloadAll()
	waitFor(t, "the download", lt.Complete().Bool)
	if n := sent.Load(); n < size {
		t.Errorf("the webseed sent %d bytes, want at least %d", n, size)
	}
	sameData(t, lt, seedDir)
}

// seeding checks a seeder's torrent tt against its data on disk and waits
// until it is complete.
func seeding(t *testing.T, tt *torrent.Torrent) {
	t.Helper()
	if err := tt.VerifyDataContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the seeder to have its data", tt.Complete().Bool)
}

// addTorrent starts a client with cfg (closed at the end of the test) and
// adds mi to it.
func addTorrent(t *testing.T, cfg *torrent.ClientConfig, mi *metainfo.MetaInfo) (*torrent.Client, *torrent.Torrent) {
	t.Helper()
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	tt, err := cl.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	<-tt.GotInfo()
	return cl, tt
}

// sameData checks the torrent's data against the seeded file.
func sameData(t *testing.T, tt *torrent.Torrent, seedDir string) {
	t.Helper()
	r := tt.NewReader()
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(seedDir, "blob"))
	if string(got) != string(want) {
		t.Error("downloaded data differs")
	}
}

// WebseedRequestChunkSize and WebseedHostRequestConcurrency, config fields
// of the patched engine, bound every webseed request's range and the
// requests in flight per host: the agent's settings reach the engine
// without environment variables.
func TestWebseedRequestSettings(t *testing.T) {
	const size = 3 << 20
	seedDir := t.TempDir()
	mi := seedTorrent(t, seedDir, size)
	var longest, inFlight, most atomic.Int64
	fs := http.FileServer(http.Dir(seedDir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a, b int64
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err == nil && b-a+1 > longest.Load() {
			longest.Store(b - a + 1)
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		if n > most.Load() {
			most.Store(n)
		}
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := engineConfig(t)
	cfg.WebseedRequestChunkSize = webseedRequestChunkSize
	cfg.WebseedHostRequestConcurrency = webseedHostRequests
	_, lt := addTorrent(t, cfg, mi)
	lt.AddWebSeeds([]string{srv.URL + "/"})
	lt.DownloadAll()
	waitFor(t, "the download", lt.Complete().Bool)
	sameData(t, lt, seedDir)
	if l := longest.Load(); l == 0 || l > webseedRequestChunkSize {
		t.Errorf("longest webseed range %d bytes, want at most %d", l, webseedRequestChunkSize)
	}
	if m := most.Load(); m > webseedHostRequests {
		t.Errorf("%d webseed requests at once, want at most %d", m, webseedHostRequests)
	}
}

// With StorageZeroesPadFiles and the store (which reads pad files as
// zeros), no pad byte comes from a peer: chunks inside pad files are not
// requested, chunks that end in padding are requested without it (no
// request the engine sends covers a pad byte), and the pieces still complete. A stock client (no StorageZeroesPadFiles, file
// storage) then fetches the batch, pads included, from that client.
func TestPadsStayOffTheWire(t *testing.T) {
	for _, chunk := range []int{0, 4 << 10} { // the default (16 KiB) and one that puts whole chunks in pads
		t.Run(fmt.Sprintf("chunk %d", chunk), func(t *testing.T) {
			padsStayOffTheWire(t, chunk)
		})
	}
}

func padsStayOffTheWire(t *testing.T, chunkSize int) {
	sizes := []int{40000, 3*torrentfile.PieceLength + 1, 10, torrentfile.PieceLength, 70001, 5000}
	seedDir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	var files []torrentfile.File
	var want []byte
	var pads [][2]int64 // torrent offsets [begin, end) of the pad files
	payload := 0
	for i, n := range sizes {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		p := fmt.Sprintf("f%d", i)
		if err := os.MkdirAll(filepath.Join(seedDir, "t"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(seedDir, "t", p), data, 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := torrentfile.HashReader(bytes.NewReader(data), int64(n))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, torrentfile.File{Path: p, Hashes: h})
		want = append(want, data...)
		payload += n
		if pad := torrentfile.PadLength(int64(n)); pad != 0 && i < len(sizes)-1 {
			pads = append(pads, [2]int64{int64(len(want)), int64(len(want)) + pad})
			want = append(want, make([]byte, pad)...)
			// The seeder uses stock file storage: its pad files are on disk.
			pp := filepath.Join(append([]string{seedDir, "t"}, torrentfile.PadPath(pad)...)...)
			if err := os.MkdirAll(filepath.Dir(pp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pp, make([]byte, pad), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	info, err := torrentfile.Info("t", files)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	add := func(cfg *torrent.ClientConfig) (*torrent.Client, *torrent.Torrent) {
		cl, err := torrent.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		tt, _ := cl.AddTorrentOpt(torrent.AddTorrentOpts{
			InfoHash: metainfo.HashBytes(ib), InfoBytes: ib, ChunkSize: pp.Integer(chunkSize),
		})
		<-tt.GotInfo()
		return cl, tt
	}
	readAll := func(tt *torrent.Torrent) []byte {
		rd := tt.NewReader()
		defer rd.Close()
		got, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	scfg := engineConfig(t)
	scfg.DataDir = seedDir
	seeder, st := add(scfg)
	seeding(t, st)

	s, err := store.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lcfg := engineConfig(t)
	lcfg.DefaultStorage = s
	lcfg.StorageZeroesPadFiles = true
	var mu sync.Mutex
	var sent []torrent.Request
	lcfg.Callbacks.SentRequest = append(lcfg.Callbacks.SentRequest, func(e torrent.PeerRequestEvent) {
		mu.Lock()
		sent = append(sent, e.Request)
		mu.Unlock()
	})
	leecher, lt := add(lcfg)
	lt.DownloadAll()
	lt.AddClientPeer(seeder)
	waitFor(t, "the download", lt.Complete().Bool)
	stats := lt.Stats()
	if got := stats.ConnStats.BytesReadUsefulData.Int64(); got != int64(payload) {
		t.Errorf("%d useful data bytes from the peer, want the payload's %d", got, payload)
	}
	mu.Lock()
	for _, r := range sent {
		off := int64(r.Index)*torrentfile.PieceLength + int64(r.Begin)
		for _, p := range pads {
			if off < p[1] && off+int64(r.Length) > p[0] {
				t.Errorf("request %v (bytes %d-%d) asks for pad bytes %d-%d", r, off, off+int64(r.Length), p[0], p[1])
			}
		}
	}
	mu.Unlock()
	if !bytes.Equal(readAll(lt), want) {
		t.Error("downloaded data differs")
	}

	ocfg := engineConfig(t)
	_, ot := add(ocfg)
	ot.DownloadAll()
	ot.AddClientPeer(leecher)
	waitFor(t, "the stock client's download", ot.Complete().Bool)
	if !bytes.Equal(readAll(ot), want) {
		t.Error("the stock client's data differs")
	}
}

// With WebseedSliceOwnerGrace, leechers connected to each other that start
// together take distinct slices from a slow webseed and the rest from each
// other: the webseed sends about one copy, where each leecher would
// otherwise also fetch the slices the others are fetching.
func TestWebseedSliceOwners(t *testing.T) {
	const size, n = 24 << 20, 4
	seedDir := t.TempDir()
	mi := seedTorrent(t, seedDir, size)
	srv, sent := slowServer(t, seedDir, 8<<20)
	var ts []*torrent.Torrent
	var cls []*torrent.Client
	for i := range n {
		cl, tt := addTorrent(t, burstConfig(t, uint64(1000+i)), mi)
		tt.SetWebseedsLeavePeerPieces(true)
		tt.DownloadAll() // no peer, no webseed yet: a leecher wants connections
		cls, ts = append(cls, cl), append(ts, tt)
	}
	for i, tt := range ts {
		for _, cl := range cls[i+1:] {
			tt.AddClientPeer(cl)
		}
	}
	waitFor(t, "the leechers to connect", func() bool {
		for _, tt := range ts {
			if len(tt.PeerConns()) < n-1 {
				return false
			}
		}
		return true
	})
	for _, tt := range ts {
		tt.AddWebSeeds([]string{srv.URL + "/"})
	}
	for _, tt := range ts {
		waitFor(t, "the downloads", tt.Complete().Bool)
		sameData(t, tt, seedDir)
	}
	copies := float64(sent.Load()) / size
	t.Logf("%d leechers: the webseed sent %.2f copies", n, copies)
	if copies > 1.12 {
		t.Errorf("the webseed sent %.2f copies to %d leechers that share slices, want at most 1.12", copies, n)
	}
}

// With SetWebseedsLeaveOnlyRequestedPeerPieces, two leechers whose uploads
// are slower than the webseed take from it the pieces the other holds but
// does not send, also in the webseed slices the other owns (it fetched them
// from the webseed): each gets from its peer only what that peer's upload
// delivers while the webseed works (about 1/8 of the torrent here), not the
// half the other's slices hold.
func TestWebseedsTakeIdlePiecesOfOwnedSlices(t *testing.T) {
	const size = 16 << 20
	seedDir := t.TempDir()
	mi := seedTorrent(t, seedDir, size)
	srv, sent := slowServer(t, seedDir, 8<<20)
	var ts []*torrent.Torrent
	var cls []*torrent.Client
	for i := range 2 {
		cfg := burstConfig(t, uint64(2000+i))
		cfg.UploadRateLimiter = rate.NewLimiter(512<<10, 256<<10)
		cl, tt := addTorrent(t, cfg, mi)
		tt.SetWebseedsLeavePeerPieces(true)
		tt.SetWebseedsLeaveOnlyRequestedPeerPieces(true)
		tt.DownloadAll()
		cls, ts = append(cls, cl), append(ts, tt)
	}
	ts[0].AddClientPeer(cls[1])
	waitFor(t, "the leechers to connect", func() bool { return len(ts[0].PeerConns()) > 0 && len(ts[1].PeerConns()) > 0 })
	for _, tt := range ts {
		tt.AddWebSeeds([]string{srv.URL + "/"})
	}
	for i, tt := range ts {
		waitFor(t, "the downloads", tt.Complete().Bool)
		sameData(t, tt, seedDir)
		st := tt.Stats()
		fromPeer := float64(st.PeerConns.BytesReadUsefulData.Int64()) / size
		t.Logf("leecher %d: %.2f of the torrent from its peer", i, fromPeer)
		if fromPeer > 0.3 {
			t.Errorf("leecher %d got %.2f of the torrent from a peer slower than the webseed, want at most 0.3", i, fromPeer)
		}
	}
	t.Logf("the webseed sent %.2f copies", float64(sent.Load())/size)
}

// burstConfig is engineConfig set up as the agent sets up a host of a
// burst: uploads while leeching, its webseed slice order (seed), the
// agent's webseed requests, and slice owners (a grace of 3 s).
func burstConfig(t *testing.T, seed uint64) *torrent.ClientConfig {
	cfg := engineConfig(t)
	cfg.UploadWhileLeeching = true
	cfg.WebseedSliceOrderSeed = seed
	cfg.WebseedRequestChunkSize = webseedRequestChunkSize
	cfg.WebseedHostRequestConcurrency = webseedHostRequests
	cfg.WebseedSliceOwnerGrace = 3 * time.Second
	return cfg
}

// slowServer is countingServer sending at most rate bytes per second in all.
func slowServer(t *testing.T, dir string, rate int64) (*httptest.Server, *atomic.Int64) {
	var sent atomic.Int64
	var mu sync.Mutex
	start := time.Now()
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.ServeHTTP(slowWriter{w, &sent, func(n int) {
			mu.Lock()
			due := start.Add(time.Duration(sent.Add(int64(n)) * int64(time.Second) / rate))
			mu.Unlock()
			time.Sleep(time.Until(due))
		}}, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &sent
}

type slowWriter struct {
	http.ResponseWriter
	n    *atomic.Int64
	wait func(int)
}

// Write sends b in pieces of 16 KiB, each when the rate allows.
func (s slowWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		k := min(len(b), 16<<10)
		s.wait(k)
		m, err := s.ResponseWriter.Write(b[:k])
		written += m
		if err != nil {
			return written, err
		}
		b = b[k:]
	}
	return written, nil
}

// With HaveLinger, the HAVEs to a peer that is sent nothing else wait that
// long for others before they are written, and none is left behind: the
// peer hears of every piece.
func TestHaveLinger(t *testing.T) {
	const linger = 300 * time.Millisecond
	seedDir := t.TempDir()
	mi := seedTorrent(t, seedDir, 40*torrentfile.PieceLength)
	scfg := engineConfig(t)
	scfg.DataDir = seedDir
	seeder, st := addTorrent(t, scfg, mi)
	seeding(t, st)

	lcfg := engineConfig(t)
	lcfg.HaveLinger = linger
	lcfg.DisablePEX = true // its messages to the observer would carry the HAVEs along
	leecher, lt := addTorrent(t, lcfg, mi)

	// The observer has nothing: the leecher's first messages to it are HAVEs.
	ocfg := engineConfig(t)
	var mu sync.Mutex
	var firstHave time.Time
	heard := map[pp.Integer]bool{}
	ocfg.Callbacks.ReadMessage = func(_ *torrent.PeerConn, m *pp.Message) {
		if m.Type == pp.Have {
			mu.Lock()
			if firstHave.IsZero() {
				firstHave = time.Now()
			}
			heard[m.Index] = true
			mu.Unlock()
		}
	}
	_, ot := addTorrent(t, ocfg, mi)
	ot.DownloadAll()
	lt.DownloadAll()
	ot.AddClientPeer(leecher)
	waitFor(t, "the observer's connection", func() bool { return len(lt.PeerConns()) > 0 })

	sub := lt.SubscribePieceStateChanges()
	defer sub.Close()
	lt.AddClientPeer(seeder)
	var first time.Time
	for first.IsZero() {
		if ev := <-sub.Values; ev.Complete {
			first = time.Now()
		}
	}
	waitFor(t, "the download", lt.Complete().Bool)
	waitFor(t, "a HAVE of every piece", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(heard) == lt.NumPieces()
	})
	mu.Lock()
	defer mu.Unlock()
	// The first HAVE left a linger after the piece was complete (the
	// subscriber may hear of it a little late: half the linger at least).
	if d := firstHave.Sub(first); d < linger/2 {
		t.Errorf("the first HAVE arrived %v after its piece was complete, want about the linger (%v)", d, linger)
	}
}

// With SuppressRedundantHaves, a host tells of each piece it completes only
// the peers that lack it: the seeder it downloads from hears no HAVE, a peer
// that has nothing hears of every piece.
func TestSuppressRedundantHaves(t *testing.T) {
	seedDir := t.TempDir()
	mi := seedTorrent(t, seedDir, 40*torrentfile.PieceLength)
	var mu sync.Mutex
	heard := map[string]map[pp.Integer]bool{} // by listener
	listen := func(cfg *torrent.ClientConfig, name string) {
		heard[name] = map[pp.Integer]bool{}
		cfg.Callbacks.ReadMessage = func(_ *torrent.PeerConn, m *pp.Message) {
			if m.Type == pp.Have {
				mu.Lock()
				heard[name][m.Index] = true
				mu.Unlock()
			}
		}
	}
	scfg := engineConfig(t)
	scfg.DataDir = seedDir
	listen(scfg, "seeder")
	seeder, st := addTorrent(t, scfg, mi)
	seeding(t, st)

	lcfg := engineConfig(t)
	lcfg.SuppressRedundantHaves = true
	lcfg.DisablePEX = true // the observer must not find the seeder
	leecher, lt := addTorrent(t, lcfg, mi)
	// The observer starts with nothing and has the leecher alone as a
	// peer: it lacks each piece until it heard of it.
	ocfg := engineConfig(t)
	listen(ocfg, "observer")
	_, ot := addTorrent(t, ocfg, mi)
	ot.DownloadAll()
	lt.DownloadAll()
	ot.AddClientPeer(leecher)
	waitFor(t, "the observer's connection", func() bool { return len(lt.PeerConns()) > 0 })

	lt.AddClientPeer(seeder)
	waitFor(t, "the download", lt.Complete().Bool)
	waitFor(t, "a HAVE of every piece at the observer", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(heard["observer"]) == lt.NumPieces()
	})
	mu.Lock()
	defer mu.Unlock()
	if n := len(heard["seeder"]); n > 0 {
		t.Errorf("the seeder heard %d HAVEs of pieces it has, want none", n)
	}
}
