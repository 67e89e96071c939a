// Package agent is the per-host BitTorrent agent: one engine, one peer port,
// shared by every pkgtorrent-get on the host through a unix socket in the
// agent's state directory. It fetches batch torrents, keeps what it fetched
// in its store, and seeds it until it has been idle for the seed time.
//
// Peers come first: the webseeds (the mirror) join a torrent at once only when
// the tracker knows no peer for it, and otherwise only when peers deliver
// nothing for PeerGrace; while peers deliver, the webseeds fetch only the
// pieces no connected peer has.
package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/pkgtorrent/pkgtorrent/core/control"
	pmeta "github.com/pkgtorrent/pkgtorrent/core/metainfo"
	"github.com/pkgtorrent/pkgtorrent/core/store"
	"github.com/pkgtorrent/pkgtorrent/core/tracker"
)

// Config configures an agent.
type Config struct {
	control.Settings
	// Logger receives the agent's log; nil discards it.
	Logger *slog.Logger
}

// Agent is a running agent.
type Agent struct {
	cfg Config
	// lock holds the state directory's flock for the life of the agent; it
	// must stay referenced, or the garbage collector closes it.
	lock  *os.File
	log   *slog.Logger
	cl    *torrent.Client
	store *store.Store
	web   *http.Client
	ln    net.Listener
	start time.Time
	reg   *prometheus.Registry
	mln   net.Listener // metrics listener, nil when off

	mu       sync.Mutex
	entries  map[metainfo.Hash]*entry
	active   int
	lastWork time.Time

	stopOnce sync.Once
	stopped  chan struct{}
}

type entry struct {
	t        *torrent.Torrent
	layout   *store.Torrent
	payload  int64
	files    []*torrent.File // non-pad files
	webseeds []string        // BEP 19 url-list: URL + info name + path
	mirrors  []string        // repository roots: URL + path
	webOn    atomic.Bool
	policy   sync.Once
	users    int       // fetches using the entry (under Agent.mu)
	lastUsed time.Time // when the last fetch let go of it (under Agent.mu)
	failed   atomic.Pointer[error]
	trackers []string // announce URLs, told when the agent leaves
}

// ErrRunning is returned by Run when another agent holds the state directory.
var ErrRunning = errors.New("another agent is running for this state directory")

// Run starts an agent and serves until it is stopped, idle for the seed
// time, or ctx ends.
func Run(ctx context.Context, cfg Config) error {
	a, err := start(cfg)
	if err != nil {
		return err
	}
	return a.serve(ctx)
}

// ErrRoot is returned by Run when the process runs as root.
var ErrRoot = errors.New("the agent does not run as root (pkgtorrent-get starts it as the agent user)")

func start(cfg Config) (*Agent, error) {
	if os.Geteuid() == 0 {
		return nil, ErrRoot
	}
	if cfg.PeerGrace <= 0 {
		cfg.PeerGrace = control.Defaults.PeerGrace
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Nothing the agent writes is for other users: which packages a host
	// fetched is its own business. The agent's group (the users an admin
	// lets in) may read the data and use the socket.
	syscall.Umask(0o027)
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	if err := os.Chmod(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.StateDir, "agent.lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening agent lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, ErrRunning
	}
	st, err := store.New(filepath.Join(cfg.StateDir, "data"))
	if err != nil {
		return nil, err
	}
	tc := torrent.NewDefaultClientConfig()
	tc.DefaultStorage = st
	tc.DataDir = st.Dir()
	tc.Seed = true
	// The hosts of a fleet cooperate: no tit-for-tat while leeching (see
	// third_party/torrent/PKGTORRENT.md).
	tc.UploadWhileLeeching = true
	// Each host takes the webseed's slices in its own order: the hosts of a
	// burst then fetch different pieces from the mirror.
	tc.WebseedSliceOrderSeed = rand.Uint64() | 1
	tc.DisableUTP = true
	tc.NoDHT = true
	tc.NoDefaultPortForwarding = true
	tc.DisableAcceptRateLimiting = true
	tc.ListenPort = cfg.PeerPort
	tc.HTTPUserAgent = "pkgtorrent"
	tc.Slogger = log.With("component", "engine")
	if cfg.PeerHost != "" {
		host := cfg.PeerHost
		tc.ListenHost = func(string) string { return host }
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			tc.DisableIPv6 = true
		}
	}
	if cfg.UploadRateLimit > 0 {
		tc.UploadRateLimiter = rate.NewLimiter(rate.Limit(cfg.UploadRateLimit), 256<<10)
	}
	if cfg.DownloadRateLimit > 0 {
		tc.DownloadRateLimiter = rate.NewLimiter(rate.Limit(cfg.DownloadRateLimit), 256<<10)
	}
	tc.WebTransport = padTransport{next: http.DefaultTransport}
	cl, err := torrent.NewClient(tc)
	if err != nil {
		return nil, fmt.Errorf("starting BitTorrent engine: %w", err)
	}
	sock := control.SocketPath(cfg.StateDir)
	os.Remove(sock) // stale from a killed agent: we hold the lock
	ln, err := net.Listen("unix", sock)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("listening on agent socket: %w", err)
	}
	// Root (the package managers) and the agent's own user and group may
	// use the agent; an admin lets another user in by adding it to the
	// agent's group.
	if err := os.Chmod(sock, 0o660); err != nil {
		ln.Close()
		cl.Close()
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	now := time.Now()
	a := &Agent{
		cfg: cfg, lock: lock, log: log, cl: cl, store: st, ln: ln, start: now,
		web:      &http.Client{Timeout: 2 * time.Second},
		entries:  map[metainfo.Hash]*entry{},
		lastWork: now,
		stopped:  make(chan struct{}),
	}
	a.reg = a.newRegistry()
	if cfg.MetricsListen != "" {
		if a.mln, err = a.serveMetrics(cfg.MetricsListen); err != nil {
			ln.Close()
			os.Remove(sock)
			cl.Close()
			return nil, err
		}
	}
	return a, nil
}

func (a *Agent) serve(ctx context.Context) error {
	a.log.Info("agent started", "pid", os.Getpid(), "peer_port", a.cl.LocalPort(), "state_dir", a.cfg.StateDir)
	if a.mln != nil {
		a.log.Info("serving metrics", "url", "http://"+a.mln.Addr().String()+"/metrics")
	}
	go func() {
		for {
			c, err := a.ln.Accept()
			if err != nil {
				return
			}
			go a.handle(c)
		}
	}()
	tick := time.NewTicker(min(time.Second, max(a.cfg.SeedTime/4, 10*time.Millisecond)))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			a.shutdown("context ended")
		case <-a.stopped:
			return nil
		case <-tick.C:
			a.mu.Lock()
			idle := a.active == 0 && time.Since(a.lastWork) >= a.cfg.SeedTime
			a.mu.Unlock()
			if idle {
				a.shutdown("seed time over")
			}
			a.enforceMaxDisk()
		}
	}
}

func (a *Agent) shutdown(why string) {
	a.stopOnce.Do(func() {
		a.log.Info("agent stopping", "reason", why)
		a.ln.Close()
		if a.mln != nil {
			a.mln.Close()
		}
		os.Remove(control.SocketPath(a.cfg.StateDir))
		a.leaveSwarms()
		a.cl.Close()
		a.mu.Lock()
		for _, e := range a.entries {
			e.layout.Close()
		}
		a.mu.Unlock()
		close(a.stopped)
	})
}

// requestTimeout bounds the time a client takes to send its request.
const requestTimeout = 30 * time.Second

func (a *Agent) handle(c net.Conn) {
	defer c.Close()
	trusted := a.trusted(c)
	enc := json.NewEncoder(c)
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := readLine(r, control.MaxRequest)
	if err != nil {
		enc.Encode(control.Reply{Type: "error", Error: "bad request: " + err.Error()})
		return
	}
	c.SetReadDeadline(time.Time{})
	var req control.Request
	if err := json.Unmarshal(line, &req); err != nil {
		enc.Encode(control.Reply{Type: "error", Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case "stop":
		if !trusted {
			enc.Encode(control.Reply{Type: "error", Error: "only root and the agent's user may stop the agent"})
			return
		}
		enc.Encode(control.Reply{Type: "done"})
		a.shutdown("stop requested")
	case "status":
		s := a.status()
		enc.Encode(control.Reply{Type: "status", Status: &s})
	case "metrics":
		text, err := a.metricsText()
		if err != nil {
			enc.Encode(control.Reply{Type: "error", Error: err.Error()})
			return
		}
		enc.Encode(control.Reply{Type: "metrics", Metrics: text})
	case "fetch":
		// The client closing its end cancels the fetch.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			io.Copy(io.Discard, r)
			cancel()
		}()
		err := a.fetch(ctx, req, trusted, func(rep control.Reply) error { return enc.Encode(rep) })
		cancel()
		if err != nil {
			enc.Encode(control.Reply{Type: "error", Error: err.Error()})
		}
	default:
		enc.Encode(control.Reply{Type: "error", Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
}

// readLine reads one newline-terminated line of at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, fmt.Errorf("request longer than %d bytes", max)
		}
		line = append(line, frag...)
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// trusted reports whether the client on c is root or the agent's own user
// (SO_PEERCRED): they may stop the agent and name any torrent and mirror;
// anyone else who can reach the socket (the agent's group) gets only what
// the configured service vouches for.
func (a *Agent) trusted(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Geteuid()
}

func (a *Agent) busy(delta int) {
	a.mu.Lock()
	a.active += delta
	a.lastWork = time.Now()
	a.mu.Unlock()
}

func (a *Agent) fetch(ctx context.Context, req control.Request, trusted bool, send func(control.Reply) error) error {
	a.busy(1)
	defer a.busy(-1)
	mi, info, mirrors, err := pmeta.Parse(req.Torrent)
	if err != nil {
		return err
	}
	if !trusted {
		if err := a.vouch(ctx, req, info); err != nil {
			return err
		}
	}
	e, err := a.add(mi, info, append(mirrors, req.Mirrors...))
	if err != nil {
		return err
	}
	defer a.release(e)
	base := e.t.Stats()
	progress := func() control.Progress {
		s := e.t.Stats()
		p := control.Progress{
			Total:       e.payload,
			FromPeers:   s.PeerConns.BytesReadUsefulData.Int64() - base.PeerConns.BytesReadUsefulData.Int64(),
			FromWebseed: s.WebSeeds.BytesReadUsefulData.Int64() - base.WebSeeds.BytesReadUsefulData.Int64(),
			Peers:       len(e.t.PeerConns()),
			Webseed:     e.webOn.Load(),
		}
		// The torrent's count, padding included, scaled to the payload:
		// one pass over the missing pieces, where summing the files'
		// counts cost a bitmap per file (8% of an agent's CPU in a burst
		// of 1,000 files).
		if length := e.t.Length(); length > 0 {
			p.Completed = int64(float64(e.t.BytesCompleted()) / float64(length) * float64(e.payload))
		}
		return p
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var lastDone int64
	lastMove := time.Now()
	for {
		done := e.t.Complete().On()
		if err := e.failed.Load(); err != nil {
			return *err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.stopped:
			return errors.New("agent stopped")
		case <-e.t.Closed():
			if err := e.failed.Load(); err != nil {
				return *err
			}
			return errors.New("torrent dropped by the agent")
		case <-done:
			files := map[string]string{}
			for _, f := range e.files {
				rel := strings.Join(f.FileInfo().Path, "/")
				p, _ := e.layout.DataPath(rel)
				if !a.store.Complete(p) {
					return fmt.Errorf("%s: data changed on disk after verification", rel)
				}
				files[rel] = p
			}
			if err := send(control.Reply{Type: "done", Progress: progress(), Files: files}); err != nil {
				return err
			}
			// The client places the files, then hangs up: until then the
			// data must stay (see enforceMaxDisk), for a bounded time.
			select {
			case <-ctx.Done():
			case <-a.stopped:
			case <-time.After(placeTimeout):
			}
			return nil
		case <-tick.C:
			p := progress()
			if c := e.t.BytesCompleted(); c > lastDone {
				lastDone, lastMove = c, time.Now()
			} else if time.Since(lastMove) > fetchStall {
				return fmt.Errorf("no progress for %s", fetchStall)
			}
			if err := send(control.Reply{Type: "progress", Progress: p}); err != nil {
				return err
			}
		}
	}
}

// add returns the entry for a torrent, adding it to the engine if new.
func (a *Agent) add(mi *metainfo.MetaInfo, info *metainfo.Info, mirrors []string) (*entry, error) {
	ih := mi.HashInfoBytes()
	a.mu.Lock()
	e, ok := a.entries[ih]
	if ok {
		e.users++
	}
	a.mu.Unlock()
	if ok {
		return e, nil
	}
	// Ask the tracker before the engine announces us: we are not a peer.
	swarm := a.swarmSize(mi.UpvertedAnnounceList(), ih)
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.entries[ih]; ok {
		e.users++
		return e, nil
	}
	layout, err := a.store.Layout(info)
	if err != nil {
		return nil, err
	}
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		layout.Close()
		return nil, fmt.Errorf("torrent: %w", err)
	}
	e = &entry{layout: layout, webseeds: spec.Webseeds, users: 1}
	for _, tier := range mi.UpvertedAnnounceList() {
		e.trackers = append(e.trackers, tier...)
	}
	spec.Webseeds = nil // the webseed policy adds them
	for _, m := range mirrors {
		if !strings.HasSuffix(m, "/") {
			m += "/"
		}
		e.mirrors = append(e.mirrors, m)
	}
	t, _, err := a.cl.AddTorrentSpec(spec)
	if err != nil {
		layout.Close()
		return nil, fmt.Errorf("adding torrent: %w", err)
	}
	e.t = t
	t.SetOnWriteChunkError(func(err error) { a.storageFailed(e, err) })
	<-t.GotInfo()
	for _, f := range t.Files() {
		if !strings.Contains(f.FileInfo().Attr, "p") {
			e.files = append(e.files, f)
			e.payload += f.Length()
		}
	}
	t.DownloadAll()
	spreadOrder(t)
	a.entries[ih] = e
	go a.webseedPolicy(e, swarm)
	return e, nil
}

// announceCompleted tells the trackers that this host seeds the torrent,
// which it now has all of. The engine announces on its own schedule, which
// may come after a small batch has long been fetched from the webseed; until
// then a tracker would report the torrent with no seeder, and newcomers
// would pull it from the mirror.
func (a *Agent) announceCompleted(e *entry) {
	id, port := a.cl.PeerID(), a.cl.LocalPort()
	for _, tr := range e.trackers {
		if err := tracker.AnnounceEvent(a.web, tr, e.t.InfoHash(), id, port, "completed"); err != nil {
			a.log.Debug("completed announce failed", "tracker", tr, "err", err)
		}
	}
}

// webseedPolicy decides when the webseeds join the torrent, and what they
// fetch: they join at once when the tracker knows no peer for it, else when
// peers have delivered nothing for PeerGrace. (Leechers count as peers: a
// host that just completed is still a leecher to the tracker until its
// "completed" announce.) Once in, the webseeds fetch only the pieces no
// connected peer has, unless peers that have pieces we want deliver nothing
// for leaveGrace times PeerGrace: in a burst the mirror sends each piece
// about once and the hosts trade the rest, and peers that hold pieces but do
// not send them hold up a fetch for that long at most. When the torrent is
// complete, it tells the trackers (announceCompleted).
func (a *Agent) webseedPolicy(e *entry, swarm int) {
	if e.t.Complete().Bool() {
		a.announceCompleted(e)
		return
	}
	e.t.SetWebseedsLeaveOnlyRequestedPeerPieces(a.cfg.WebseedIdlePieces)
	e.t.SetWebseedsLeavePeerPieces(true)
	if swarm == 0 {
		a.addWebseeds(e, "no peers in the swarm")
	}
	start := time.Now()
	lastBytes := int64(0)
	lastDelivery := start // peers delivered something
	lastFine := start     // peers delivered, or had nothing we want
	leave := true
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-a.stopped:
			return
		case <-e.t.Closed():
			return
		case <-e.t.Complete().On():
			a.announceCompleted(e)
			return
		case now := <-tick.C:
			if e.t.Complete().Bool() { // when both were ready
				a.announceCompleted(e)
				return
			}
			st := e.t.Stats()
			if b := st.PeerConns.BytesReadUsefulData.Int64(); b > lastBytes {
				lastBytes, lastDelivery, lastFine = b, now, now
			} else if !e.t.PeersHaveWantedPieces() {
				lastFine = now
			}
			if now.Sub(lastDelivery) >= a.cfg.PeerGrace {
				a.addWebseeds(e, "peers delivered nothing")
			}
			if l := now.Sub(lastFine) < leaveGrace*a.cfg.PeerGrace; l != leave {
				leave = l
				e.t.SetWebseedsLeavePeerPieces(leave)
				a.log.Info("webseeds leave peer pieces", "torrent", e.t.InfoHash().HexString(), "on", leave)
			}
		}
	}
}

// leaveGrace is how many PeerGraces peers that have pieces we want may
// deliver nothing before the webseeds take those pieces too. In a burst of
// hosts with capped uploads a host's peers often send nothing for a second
// or two; at one PeerGrace (1 s), 10-host bursts had the origin send
// 1.1-2.1 copies of the batch (a host then takes from the mirror what its
// peers hold), at three, 1.25-1.34 in three runs each.
const leaveGrace = 3

// leaveSwarms tells the trackers of every torrent that this agent stops
// (event=stopped), all at once and within the web client's timeout. The
// engine does not when it closes, and a tracker that still counts an
// exited agent as a seeder makes every newcomer wait PeerGrace for it.
func (a *Agent) leaveSwarms() {
	a.mu.Lock()
	var wg sync.WaitGroup
	id, port := a.cl.PeerID(), a.cl.LocalPort()
	for ih, e := range a.entries {
		for _, tr := range e.trackers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := tracker.AnnounceEvent(a.web, tr, ih, id, port, "stopped"); err != nil {
					a.log.Debug("stopped announce failed", "tracker", tr, "err", err)
				}
			}()
		}
	}
	a.mu.Unlock()
	wg.Wait()
}

// spreadOrder makes this host start the torrent at a random piece and wrap
// around (pieces from the offset on get a higher priority). The engine asks
// webseeds for the wanted pieces in priority, then index order: without
// this, every host of a burst would pull the same pieces from the mirror at
// the same time, and none would have anything to give the others.
func spreadOrder(t *torrent.Torrent) {
	n := t.NumPieces()
	if n < 2 {
		return
	}
	for i := rand.IntN(n); i < n; i++ {
		t.Piece(i).SetPriority(torrent.PiecePriorityHigh)
	}
}

// swarmSize asks the trackers (first that answers) how many peers they know
// for ih; -1 when none answers.
func (a *Agent) swarmSize(trackers [][]string, ih metainfo.Hash) int {
	for _, tier := range trackers {
		for _, tr := range tier {
			n, err := tracker.Scrape(a.web, tr, ih)
			if err == nil {
				return n
			}
			a.log.Debug("scrape failed", "tracker", tr, "err", err)
		}
	}
	return -1
}

func (a *Agent) addWebseeds(e *entry, why string) {
	if e.webOn.Swap(true) {
		return
	}
	a.log.Info("webseeds join", "torrent", e.t.InfoHash().HexString(), "reason", why)
	e.t.AddWebSeeds(e.webseeds, torrent.WebSeedPathEscaper(torrentPath))
	e.t.AddWebSeeds(e.mirrors, torrent.WebSeedPathEscaper(mirrorPath))
}

func (a *Agent) status() control.Status {
	s := control.Status{PID: os.Getpid(), PeerPort: a.cl.LocalPort(), Uptime: time.Since(a.start).Seconds()}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.entries {
		s.Torrents++
		if e.t.Complete().Bool() {
			s.Seeding++
		}
		st := e.t.Stats()
		s.Peers += st.ActivePeers
		s.Uploaded += st.BytesWrittenData.Int64()
		s.FromPeers += st.PeerConns.BytesReadUsefulData.Int64()
		s.FromWeb += st.WebSeeds.BytesReadUsefulData.Int64()
	}
	s.Downloaded = s.FromPeers + s.FromWeb
	if s.Downloaded > 0 {
		s.P2PShare = float64(s.FromPeers) / float64(s.Downloaded)
	}
	if a.mln != nil {
		s.MetricsURL = "http://" + a.mln.Addr().String() + "/metrics"
	}
	return s
}

// release ends one fetch's use of e.
func (a *Agent) release(e *entry) {
	a.mu.Lock()
	e.users--
	e.lastUsed = time.Now()
	a.mu.Unlock()
}

// storageFailed fails the fetches of a torrent whose data cannot be written
// (disk full, read-only state directory) and drops it, so that a later fetch
// starts it afresh.
func (a *Agent) storageFailed(e *entry, err error) {
	err = fmt.Errorf("agent cannot store data in %s: %w", a.cfg.StateDir, err)
	if !e.failed.CompareAndSwap(nil, &err) {
		return
	}
	a.log.Error("dropping torrent", "torrent", e.t.InfoHash().HexString(), "err", err)
	a.drop(e)
}

// drop removes e from the engine and releases its data files.
func (a *Agent) drop(e *entry) {
	ih := e.t.InfoHash()
	a.mu.Lock()
	if a.entries[ih] == e {
		delete(a.entries, ih)
	}
	a.mu.Unlock()
	e.t.Drop()
	e.layout.Close()
}

// enforceMaxDisk brings the store under MaxDisk: first data no torrent
// uses, oldest first, then the idle torrents seeded longest ago.
func (a *Agent) enforceMaxDisk() {
	if a.cfg.MaxDisk <= 0 {
		return
	}
	for {
		used, err := a.store.Prune(a.cfg.MaxDisk)
		if err != nil {
			a.log.Warn("pruning data", "err", err)
			return
		}
		if used <= a.cfg.MaxDisk {
			return
		}
		var oldest *entry
		a.mu.Lock()
		for _, e := range a.entries {
			if e.users == 0 && (oldest == nil || e.lastUsed.Before(oldest.lastUsed)) {
				oldest = e
			}
		}
		a.mu.Unlock()
		if oldest == nil {
			return // everything left is in use
		}
		a.log.Info("evicting torrent over max-disk", "torrent", oldest.t.InfoHash().HexString(), "used", used, "max_disk", a.cfg.MaxDisk)
		a.drop(oldest)
	}
}
