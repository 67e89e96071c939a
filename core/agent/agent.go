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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/pkgtorrent/pkgtorrent/core/control"
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
	// announces orders this agent's own announces: "completed" ones hold
	// it for reading, leaveSwarms for writing and sets left, so that no
	// "completed" reaches a tracker after the "stopped" (see leaveSwarms).
	announces sync.RWMutex
	left      bool
	// imported counts the bytes taken in from direct fetches (see direct);
	// importing, the files received from their clients not yet taken in.
	imported  atomic.Int64
	importing atomic.Int64
	reg       *prometheus.Registry
	mln       net.Listener // metrics listener, nil when off

	mu      sync.Mutex
	entries map[metainfo.Hash]*entry
	holders holders // under mu
	// claims are the direct fetches being started (under mu; see claim).
	claims   map[*claim]struct{}
	active   int
	lastWork time.Time

	adopt adoption
	// introduced receives the listen addresses of agents that connected
	// (see introduce).
	introduced chan netip.AddrPort

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
	fetching sync.Once // DownloadAll and the webseed policy, once a client fetches it
	users    int       // fetches using the entry (under Agent.mu)
	lastUsed time.Time // when the last fetch let go of it (under Agent.mu)
	failed   atomic.Pointer[error]
	trackers []string // announce URLs, told when the agent leaves (under Agent.mu)
	// announceList is an adopted batch's trackers, not announced to until
	// a client fetches the batch (nil: announced from the start).
	announceList [][]string
	// yield, closed once (yieldOnce), ends a direct fetch's downloads
	// (see yieldShared): another fetch of this agent shares files with it.
	yield     chan struct{}
	yieldOnce sync.Once
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
	control.Ready()
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
	// The store reads pad files as zeros: no pad byte is requested from
	// peers (see third_party/torrent/PKGTORRENT.md).
	tc.StorageZeroesPadFiles = true
	// Each host takes the webseed's slices in its own order: the hosts of a
	// burst then fetch different pieces from the mirror.
	tc.WebseedSliceOrderSeed = rand.Uint64() | 1
	// And leaves to a connected peer the slices it owns while it makes
	// progress: the hosts of a burst take distinct slices from the mirror.
	tc.WebseedSliceOwnerGrace = leaveGrace * cfg.PeerGrace
	tc.WebseedRequestChunkSize = webseedRequestChunkSize
	tc.WebseedHostRequestConcurrency = webseedHostRequests
	tc.StealRequestGrace = stealRequestGrace
	// Whole-piece requests go to agents; stock clients get 16 KiB ones.
	tc.WholeChunkPeerIDPrefix = tracker.AgentIDPrefix
	// A peer's new piece is requested without replanning every piece.
	tc.RequestOnHave = true
	tc.HaveLinger = haveLinger
	// A peer that has a piece is not told this host has it too.
	tc.SuppressRedundantHaves = true
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
		tc.UploadRateLimiter = rate.NewLimiter(rate.Limit(cfg.UploadRateLimit), max(256<<10, peerChunkSize))
	}
	if cfg.DownloadRateLimit > 0 {
		tc.DownloadRateLimiter = rate.NewLimiter(rate.Limit(cfg.DownloadRateLimit), 256<<10)
	}
	tc.WebTransport = padTransport{next: http.DefaultTransport}
	// Sharing across batches (crossbatch.go): the agents know each other by
	// their peer id prefix, talk in plaintext (an encrypted handshake for a
	// batch this agent has not adopted yet could not be read), accept
	// connections while no torrent wants more, and adopt the batch of a
	// handshake they do not have when the service vouches for it.
	tc.Bep20 = tracker.AgentIDPrefix
	tc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{}
	var self atomic.Pointer[Agent]
	if cfg.CrossBatch {
		tc.AlwaysWantConns = true
		tc.Callbacks.CompletedHandshake = func(pc *torrent.PeerConn, ih metainfo.Hash) {
			if a := self.Load(); a != nil {
				a.onHandshake(pc, ih)
			}
		}
		tc.Callbacks.ReadExtendedHandshake = func(pc *torrent.PeerConn, m *pp.ExtendedHandshakeMessage) {
			if a := self.Load(); a != nil {
				a.introduce(pc, m)
			}
		}
	}
	if cfg.LocalDiscovery {
		tc.LocalServiceDiscovery = &torrent.LocalServiceDiscoveryConfig{}
	}
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

		introduced: make(chan netip.AddrPort, 256),
	}
	self.Store(a)
	completed := make(chan completedPiece, 4096)
	st.OnComplete(func(key string, piece int) {
		select {
		case completed <- completedPiece{key, piece}:
		default: // a lost notice costs at most a piece fetched twice
		}
	})
	go a.propagate(completed)
	go a.dialBack()
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
	a.log.Info("agent started", "pid", os.Getpid(), "peer_port", a.cl.LocalPort(), "state_dir", a.cfg.StateDir, "cpus", runtime.GOMAXPROCS(0))
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
		// The engine stops first: an announce of its own ("completed" on
		// finishing a batch) must not reach a tracker after the "stopped".
		id, port := a.cl.PeerID(), a.cl.LocalPort()
		a.cl.Close()
		a.leaveSwarms(id, port)
		a.mu.Lock()
		for _, e := range a.entries {
			e.layout.Close()
		}
		a.mu.Unlock()
		close(a.stopped)
	})
}
