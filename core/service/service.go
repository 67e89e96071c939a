// Package service is the mirror-side pkgtorrent service: it serves a mirror
// tree over HTTP, builds batch torrents on request, acts as their BEP 19
// webseed and, unless external trackers are configured, as their tracker.
//
// It serves the files of the mirror tree at their paths (GET and HEAD) and
// the API of package api under api.Prefix; errors are api.ErrorBody JSON
// objects sent with Cache-Control: no-store.
package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/hashcache"
	"github.com/pkgtorrent/pkgtorrent/core/internal/flight"
	"github.com/pkgtorrent/pkgtorrent/core/tracker"
)

// Defaults for the zero fields of Config.
const (
	DefaultListen            = "127.0.0.1:7070"
	DefaultMaxFiles          = 100000
	DefaultMaxBodyBytes      = 32 << 20
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultHashCacheBytes    = 256 << 20
)

// shutdownGrace bounds how long Serve waits for requests in flight once its
// context is done.
const shutdownGrace = 10 * time.Second

// Config configures a Service. Zero fields take the defaults above.
type Config struct {
	// Root is the mirror tree to serve. It must not contain an entry named
	// ".pkgtorrent".
	Root string
	// Listen is the TCP address to listen on; port 0 picks a free port.
	Listen string
	// PublicURL is the service's base URL as clients reach it, used in
	// the torrents' announce and webseed URLs. Default: the URL of the
	// bound address (the host name stands in for an unspecified address).
	PublicURL string
	// OriginRateLimit caps the file and webseed bytes sent per second, over
	// all clients together; 0 is unlimited.
	OriginRateLimit int64
	// Mirrors are extra mirror base URLs written into every torrent.
	Mirrors []string
	// Trackers are external announce URLs; when set they replace the
	// embedded tracker, which is then not served.
	Trackers []string
	// MaxFiles bounds the files of one batch.
	MaxFiles int
	// MaxBodyBytes bounds the body of a torrent POST.
	MaxBodyBytes int64
	// TrackerInterval is the embedded tracker's announce interval
	// (tracker.DefaultInterval if zero).
	TrackerInterval time.Duration
	// ReadHeaderTimeout and ReadTimeout bound how long a client may take to
	// send its request (against slow-loris clients).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout bounds each write of a response to a client (at most
	// chunkSize bytes): a client that stops reading is dropped after it,
	// while one that keeps reading may take as long as it needs.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request.
	IdleTimeout time.Duration
	// MaxBuilds bounds the torrent builds that run (hash files) at once;
	// further builds wait for a slot, and give up when every client waiting
	// for them has gone. Default: GOMAXPROCS; negative is an error.
	MaxBuilds int
	// HashCacheBytes bounds the memory of the piece hash cache (paths,
	// hashes and a fixed overhead per file); the least recently used files
	// are forgotten beyond it. Default: DefaultHashCacheBytes; negative is
	// an error.
	HashCacheBytes int64
}

// Service serves one mirror tree. Create it with New.
type Service struct {
	cfg     Config
	root    *os.Root
	hashes  hashcache.Cache
	tracker *tracker.Tracker // nil with external trackers
	limiter *rate.Limiter    // nil when unlimited
	handler http.Handler

	builds flight.Group[string, []byte]
	slots  chan struct{} // one token per running build, MaxBuilds in all
	mu     sync.Mutex
	store  torrentStore

	lnMu      sync.Mutex
	ln        net.Listener
	url       string
	publicURL string

	torrentsBuilt    atomic.Int64
	torrentRequests  atomic.Int64
	fileBytesSent    atomic.Int64
	webseedBytesSent atomic.Int64
	padBytesSent     atomic.Int64
	torrentCacheHits atomic.Int64
	buildsRunning    atomic.Int64
	buildsWaiting    atomic.Int64
	buildsAbandoned  atomic.Int64

	metrics *metrics
}

// New checks cfg and returns a service for it; it does not listen yet.
func New(cfg Config) (*Service, error) {
	if cfg.Root == "" {
		return nil, errors.New("service: no root directory configured")
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("service: opening root: %w", err)
	}
	if _, err := root.Lstat(".pkgtorrent"); err == nil {
		root.Close()
		return nil, fmt.Errorf("service: root %s contains an entry named .pkgtorrent, which is reserved for the service API", cfg.Root)
	} else if !errors.Is(err, fs.ErrNotExist) {
		root.Close()
		return nil, fmt.Errorf("service: checking root: %w", err)
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxBuilds == 0 {
		cfg.MaxBuilds = runtime.GOMAXPROCS(0)
	}
	if cfg.HashCacheBytes == 0 {
		cfg.HashCacheBytes = DefaultHashCacheBytes
	}
	if cfg.OriginRateLimit < 0 {
		root.Close()
		return nil, fmt.Errorf("service: negative origin rate limit %d", cfg.OriginRateLimit)
	}
	if cfg.MaxBuilds < 0 || cfg.HashCacheBytes < 0 {
		root.Close()
		return nil, fmt.Errorf("service: negative max builds %d or hash cache bytes %d", cfg.MaxBuilds, cfg.HashCacheBytes)
	}
	s := &Service{cfg: cfg, root: root, slots: make(chan struct{}, cfg.MaxBuilds)}
	s.hashes.MaxBytes = cfg.HashCacheBytes
	if cfg.PublicURL != "" {
		if s.publicURL, err = baseURL(cfg.PublicURL); err != nil {
			root.Close()
			return nil, fmt.Errorf("service: public URL: %w", err)
		}
	}
	for _, list := range [][]string{cfg.Mirrors, cfg.Trackers} {
		for _, u := range list {
			if _, err := baseURL(u); err != nil {
				root.Close()
				return nil, fmt.Errorf("service: %w", err)
			}
		}
	}
	if len(cfg.Trackers) == 0 {
		s.tracker = tracker.New(cfg.TrackerInterval)
		s.tracker.SetRelated(s.related)
	}
	if cfg.OriginRateLimit > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(cfg.OriginRateLimit), chunkSize)
	}
	s.metrics = newMetrics(s)
	s.handler = s.writeDeadlines(s.metrics.instrument(http.HandlerFunc(s.serveHTTP)))
	return s, nil
}

// baseURL checks that u is an absolute http or https URL without query or
// fragment, and returns it ending in "/".
func baseURL(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("URL %q: %w", u, err)
	}
	if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("URL %q: must be an absolute http or https URL", u)
	}
	if p.RawQuery != "" || p.Fragment != "" {
		return "", fmt.Errorf("URL %q: query or fragment not allowed", u)
	}
	if u[len(u)-1] != '/' {
		u += "/"
	}
	return u, nil
}

// Handler returns the service's HTTP handler.
func (s *Service) Handler() http.Handler { return s.handler }

// Listen binds the configured address. Serve calls it if needed; call it
// first to learn URL before serving.
func (s *Service) Listen() error {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	s.ln = ln
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	public := host
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
		if addr.IP.To4() == nil {
			host = "::1"
		}
		public = host
		if h, err := os.Hostname(); err == nil && h != "" {
			public = h
		}
	}
	port := strconv.Itoa(addr.Port)
	s.url = "http://" + net.JoinHostPort(host, port) + "/"
	if s.publicURL == "" {
		s.publicURL = "http://" + net.JoinHostPort(public, port) + "/"
	}
	return nil
}

// URL returns the base URL of the bound address ("" before Listen); an
// unspecified address is shown as loopback.
func (s *Service) URL() string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	return s.url
}

// PublicURL returns the base URL written into torrents ("" if neither
// configured nor known from Listen yet).
func (s *Service) PublicURL() string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	return s.publicURL
}

// Serve serves HTTP on the bound address (listening first if needed) until
// ctx is done, then shuts down gracefully and returns nil.
func (s *Service) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("service: serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// ListenAndServe is Listen followed by Serve.
func (s *Service) ListenAndServe(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Close releases the mirror root and the listener, if any. Call it after
// Serve has returned.
func (s *Service) Close() error {
	s.lnMu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.lnMu.Unlock()
	return s.root.Close()
}

// Stats returns the current counters.
func (s *Service) Stats() api.Stats {
	return api.Stats{
		TorrentsBuilt:    s.torrentsBuilt.Load(),
		TorrentRequests:  s.torrentRequests.Load(),
		FileBytesSent:    s.fileBytesSent.Load(),
		WebseedBytesSent: s.webseedBytesSent.Load(),
		PadBytesSent:     s.padBytesSent.Load(),
		HashBytesRead:    s.hashes.BytesRead.Load(),
		HashCacheHits:    s.hashes.Hits.Load(),
		TorrentCacheHits: s.torrentCacheHits.Load(),
		BuildsRunning:    s.buildsRunning.Load(),
		BuildsWaiting:    s.buildsWaiting.Load(),
		BuildsAbandoned:  s.buildsAbandoned.Load(),

		HashCacheFiles:     int64(s.hashes.Len()),
		HashCacheBytes:     s.hashes.Bytes(),
		HashCacheEvictions: s.hashes.Evictions.Load(),
	}
}
