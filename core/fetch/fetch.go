// Package fetch is what pkgtorrent-get does: map URLs to repository paths,
// get the batch torrent from the service, have the host's agent download it,
// and place verified files at their destinations.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/core/mirror"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// Config configures a fetch.
type Config struct {
	// Service is the service's base URL; its files are served under it.
	Service string
	// Mirrors are further repository base URLs (see package mirror).
	Mirrors []string
	// StateDir selects the agent.
	StateDir string
	// Launch starts an agent for StateDir when none is running.
	Launch control.Launch
	// ConnectTimeout bounds reaching the service and the agent.
	ConnectTimeout time.Duration
	// StallTimeout bounds any wait without progress.
	StallTimeout time.Duration
	// Progress receives progress reports; nil for none.
	Progress func(control.Progress)
	// HTTPFallback downloads the files over plain HTTP from their URLs when
	// the torrent fetch fails (for callers without a downloader of their own).
	HTTPFallback bool
	// Warn receives one-line notices (the fallback); nil for none.
	Warn func(string)
	// HTTPOnly are file name patterns (path.Match syntax, matched against
	// the last element of the URL path) of files that are always
	// downloaded over plain HTTP from their URL, never through a torrent:
	// repository databases and signatures, small and changing constantly.
	// DefaultHTTPOnly holds pacman's.
	HTTPOnly []string
	// NoDirect makes the agent download every batch, even when no peer
	// has it: by default the files of a batch no peer has are downloaded
	// straight from the mirror and given to the agent to seed.
	NoDirect bool
	// HTTPOnlyMaxSize caps the size of a file downloaded because it
	// matches HTTPOnly (0: DefaultHTTPOnlyMaxSize; negative: no cap).
	HTTPOnlyMaxSize int64
}

// DefaultConnectTimeout and DefaultStallTimeout are the timeouts of a fetch
// whose Config sets none.
const (
	DefaultConnectTimeout = 3 * time.Second
	DefaultStallTimeout   = 15 * time.Second
)

// DefaultHTTPOnlyMaxSize is the default HTTPOnlyMaxSize: above the largest
// repository databases, far below what would fill a disk.
const DefaultHTTPOnlyMaxSize = 256 << 20

// DefaultHTTPOnly are the HTTPOnly patterns of a pacman host: sync
// databases, their file lists, and every detached signature.
var DefaultHTTPOnly = []string{"*.db", "*.files", "*.sig"}

// httpOnly reports whether the file named by rawURL matches one of patterns.
func httpOnly(patterns []string, rawURL string) (bool, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false, fmt.Errorf("URL %q: %w", rawURL, err)
	}
	name := path.Base(u.Path)
	for _, p := range patterns {
		ok, err := path.Match(p, name)
		if err != nil {
			return false, fmt.Errorf("http-only pattern %q: %w", p, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// Result summarises a completed fetch.
type Result struct {
	Files            int   `json:"files"`
	Bytes            int64 `json:"bytes"`
	BytesFromPeers   int64 `json:"bytes_from_peers"`
	BytesFromWebseed int64 `json:"bytes_from_webseed"`
	// BytesFromHTTP counts bytes of the plain HTTP fallback.
	BytesFromHTTP int64 `json:"bytes_from_http"`
	Fallback      bool  `json:"fallback"`
	// Direct tells that no peer had the batch: the files came straight
	// from the mirror (counted in BytesFromWebseed), the agent seeds them.
	Direct  bool    `json:"direct,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Run fetches items and places them: those matching cfg.HTTPOnly over plain
// HTTP, the others through the torrent and, if that fails and
// cfg.HTTPFallback is set, over plain HTTP. On error no output was created
// or replaced by this call, except outputs placed complete and verified:
// when some files of a fetched torrent fail verification, the others are
// still placed.
func Run(ctx context.Context, cfg Config, items []Item) (Result, error) {
	start := time.Now()
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	var plain, rest []Item
	for _, it := range items {
		ok, err := httpOnly(cfg.HTTPOnly, it.URL)
		if err != nil {
			return Result{}, err
		}
		if ok {
			plain = append(plain, it)
		} else {
			rest = append(rest, it)
		}
	}
	var dres Result
	if len(plain) > 0 {
		max := cfg.HTTPOnlyMaxSize
		if max == 0 {
			max = DefaultHTTPOnlyMaxSize
		}
		r, err := plainHTTP(ctx, cfg, plain, max)
		if err != nil {
			return Result{}, err
		}
		dres = r
	}
	res, err := viaPeers(ctx, cfg, rest)
	if err != nil {
		return Result{}, err
	}
	res.Files += dres.Files
	res.Bytes += dres.Bytes
	res.BytesFromHTTP += dres.BytesFromHTTP
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// viaPeers fetches items through the torrent, falling back to plain HTTP
// when that fails and cfg.HTTPFallback is set.
func viaPeers(ctx context.Context, cfg Config, items []Item) (Result, error) {
	if len(items) == 0 {
		return Result{}, nil
	}
	start := time.Now()
	res, err := viaTorrent(ctx, cfg, items)
	var de *destError
	if err == nil || !cfg.HTTPFallback || ctx.Err() != nil || errors.As(err, &de) {
		return res, err
	}
	if cfg.Warn != nil {
		cfg.Warn(fmt.Sprintf("torrent fetch failed (%v); downloading over plain HTTP", err))
	}
	res, ferr := plainHTTP(ctx, cfg, items, 0)
	if ferr != nil {
		return Result{}, fmt.Errorf("%v; plain HTTP fallback: %w", err, ferr)
	}
	res.Fallback = true
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func viaTorrent(ctx context.Context, cfg Config, items []Item) (Result, error) {
	start := time.Now()
	if cfg.Service == "" {
		return Result{}, errors.New("no service URL configured")
	}
	bases := append([]string{cfg.Service}, cfg.Mirrors...)
	rels := make([]string, len(items))
	outs := map[string]bool{}
	for i, it := range items {
		rel, err := mirror.RelPath(it.URL, bases)
		if err != nil {
			return Result{}, err
		}
		rels[i] = rel
		if it.Output == "" {
			return Result{}, fmt.Errorf("%s: empty output path", it.URL)
		}
		o := filepath.Clean(it.Output)
		if outs[o] {
			return Result{}, fmt.Errorf("output %s given twice", it.Output)
		}
		outs[o] = true
		if st, err := os.Stat(filepath.Dir(o)); err != nil {
			return Result{}, &destError{fmt.Errorf("output directory of %s: %w", it.Output, err)}
		} else if !st.IsDir() {
			return Result{}, &destError{fmt.Errorf("output directory of %s is not a directory", it.Output)}
		}
	}
	if err := probeDirs(outs); err != nil {
		return Result{}, err
	}
	hc := httpClient(cfg)
	tb, err := api.Torrent(ctx, hc, cfg.Service, rels)
	hc.CloseIdleConnections()
	if err != nil {
		return Result{}, err
	}
	want, err := expectations(tb, rels)
	if err != nil {
		return Result{}, fmt.Errorf("service sent a bad torrent: %w", err)
	}
	conn, err := control.Connect(ctx, cfg.StateDir, cfg.Launch, cfg.ConnectTimeout)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	if err := conn.Send(control.Request{Op: "fetch", Torrent: tb, Mirrors: cfg.Mirrors, Direct: !cfg.NoDirect}); err != nil {
		return Result{}, fmt.Errorf("talking to agent: %w", err)
	}
	// Every file that verifies is placed, even when another one fails: a
	// package manager then downloads only the ones that failed. Files are
	// placed as the agent reports them complete, while the rest of the
	// batch downloads, a few at a time (it is a read, two hashes and a
	// write per byte).
	index := map[string][]int{}
	for i, r := range rels {
		index[r] = append(index[r], i)
	}
	placeErrs := make([]error, len(items))
	started := make([]bool, len(items))
	srcs := make([]source, len(items))
	var placed atomic.Int64
	jobs := make(chan int, len(items))
	var workers sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 4) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range jobs {
				w := want[rels[i]]
				w.sha256 = items[i].SHA256
				if err := place(cfg.StateDir, srcs[i], items[i].Output, w); err != nil {
					placeErrs[i] = fmt.Errorf("%s: %w", items[i].Output, err)
					continue
				}
				placed.Add(w.size)
			}
		}()
	}
	startPlacing := func(rep control.Reply) {
		for rel, path := range rep.Files {
			for _, i := range index[rel] {
				if !started[i] {
					started[i], srcs[i] = true, source{path, rep.Offsets[rel]}
					jobs <- i // buffered for every item: never blocks
				}
			}
		}
	}
	var last control.Progress
	var direct *directFetch
	// follow follows the agent's replies to the fetch until the batch is
	// done; on "direct" it downloads the files itself, and leaves those it
	// did not get (peers arrived, or the mirror failed) to the agent.
	follow := func() error {
		recv := conn.Recv
		lastMove := time.Now()
		for {
			rep, err := recv(time.Now().Add(cfg.StallTimeout))
			if err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if rep.Type == "swarm" {
				continue // for a direct fetch that has ended
			}
			p := rep.Progress
			if p.Completed > last.Completed || rep.Type == "done" || rep.Type == "files" {
				lastMove = time.Now()
			}
			last = p
			if cfg.Progress != nil && rep.Type != "direct" {
				cfg.Progress(p)
			}
			switch {
			case rep.Type == "direct" && direct == nil:
				startPlacing(rep)
				direct = newDirectFetch(cfg, conn)
				for i := range items {
					direct.total += want[rels[i]].size
					if !started[i] {
						started[i] = true
						direct.todo = append(direct.todo, i)
					}
				}
				rest := direct.run(ctx, items, rels, want, placeErrs, &placed)
				if len(rest) == 0 || ctx.Err() != nil {
					return nil
				}
				for _, i := range rest {
					started[i], placeErrs[i] = false, nil
				}
				if err := conn.Send(control.Request{Op: "fetch"}); err != nil {
					return fmt.Errorf("talking to agent: %w", err)
				}
				recv, lastMove = direct.recv, time.Now()
			case rep.Type == "done":
				startPlacing(rep)
				return nil
			case rep.Type == "files":
				startPlacing(rep)
			case time.Since(lastMove) >= cfg.StallTimeout:
				return fmt.Errorf("no progress for %s (%d of %d bytes, %d peers)", cfg.StallTimeout, p.Completed, p.Total, p.Peers)
			}
		}
	}
	err = follow()
	close(jobs)
	workers.Wait()
	if err != nil {
		return Result{}, err
	}
	res := Result{Files: len(items), BytesFromPeers: last.FromPeers, BytesFromWebseed: last.FromWebseed}
	if direct != nil {
		res.Direct = true
		res.BytesFromWebseed += direct.got.Load()
	}
	for i := range items {
		if !started[i] {
			placeErrs[i] = fmt.Errorf("agent did not return %s", rels[i])
		}
	}
	res.Bytes = placed.Load()
	var errs []error
	for _, err := range placeErrs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return Result{}, fmt.Errorf("%d of %d files not placed: %w", len(errs), len(items), errors.Join(errs...))
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// destError is a destination no download can fix (the fallback is not tried).
type destError struct{ error }

func (e *destError) Unwrap() error { return e.error }

// probeDirs checks, before anything is downloaded, that a file can be
// created in the directory of every output.
func probeDirs(outs map[string]bool) error {
	dirs := map[string]bool{}
	for o := range outs {
		dir := filepath.Dir(o)
		if dirs[dir] {
			continue
		}
		dirs[dir] = true
		f, err := os.CreateTemp(dir, ".pkgtorrent-probe-*")
		if err != nil {
			return &destError{fmt.Errorf("output directory %s is not writable: %w", dir, err)}
		}
		f.Close()
		os.Remove(f.Name())
	}
	return nil
}

// expectations checks that the torrent holds exactly the batch, in canonical
// order, and returns what each file must match.
func expectations(tb []byte, rels []string) (map[string]expect, error) {
	_, info, _, err := torrentfile.Parse(tb)
	if err != nil {
		return nil, err
	}
	spans, err := torrentfile.Layout(info)
	if err != nil {
		return nil, err
	}
	canon, _ := batch.Canonical(rels)
	want := map[string]expect{}
	var got []string
	for _, sp := range spans {
		got = append(got, sp.Path)
		want[sp.Path] = expect{size: sp.Length, pieces: sp.Hashes, tail: sp.Unpadded}
	}
	if !slices.Equal(got, canon) {
		return nil, errors.New("its files are not the batch asked for")
	}
	return want, nil
}

// httpClient is the client for the service and the fallback: connecting
// and waiting for response headers are bounded by the configured timeouts.
func httpClient(cfg Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.ConnectTimeout}).DialContext,
		ResponseHeaderTimeout: cfg.StallTimeout,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
	}}
}
