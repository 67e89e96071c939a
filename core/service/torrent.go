package service

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// maxStoredBytes bounds the torrent bytes kept in memory; the oldest
// torrents are forgotten beyond it (clients then get 412 and POST again).
const maxStoredBytes = 512 << 20

// hashWorkers is how many files of one batch are hashed at once.
const hashWorkers = 4

// built is a stored torrent with the identity of each file at build time.
type built struct {
	torrent []byte
	ih      [20]byte // info hash
	files   []string // canonical order
	infos   []os.FileInfo
}

// torrentStore holds built torrents by digest, forgetting the oldest
// beyond maxStoredBytes, with two indexes: by info hash, and the batches
// holding each file (the most recent maxBatchesPerFile). Guarded by
// Service.mu.
type torrentStore struct {
	m      map[string]*built
	order  []string // insertion order; may hold digests since removed
	bytes  int
	byIH   map[[20]byte]string // info hash -> digest
	byFile map[string][]string // file -> digests of batches holding it, oldest first
}

// maxBatchesPerFile bounds the batches remembered per file for related.
const maxBatchesPerFile = 8

// related returns the info hashes of other stored batches that share a
// file with the batch of info hash ih, at most max.
func (t *torrentStore) related(ih [20]byte, max int) [][20]byte {
	d, ok := t.byIH[ih]
	if !ok {
		return nil
	}
	b := t.m[d]
	seen := map[string]bool{d: true}
	var out [][20]byte
	for _, f := range b.files {
		for _, od := range t.byFile[f] {
			if seen[od] {
				continue
			}
			seen[od] = true
			if ob := t.m[od]; ob != nil {
				out = append(out, ob.ih)
				if len(out) == max {
					return out
				}
			}
		}
	}
	return out
}

// index adds b (stored under d) to the indexes.
func (t *torrentStore) index(d string, b *built) {
	if t.byIH == nil {
		t.byIH = map[[20]byte]string{}
		t.byFile = map[string][]string{}
	}
	t.byIH[b.ih] = d
	for _, f := range b.files {
		l := t.byFile[f]
		if i := slices.Index(l, d); i >= 0 {
			l = slices.Delete(l, i, i+1)
		}
		if len(l) == maxBatchesPerFile {
			l = l[1:]
		}
		t.byFile[f] = append(l, d)
	}
}

// unindex removes b (stored under d) from the indexes.
func (t *torrentStore) unindex(d string, b *built) {
	if t.byIH[b.ih] == d {
		delete(t.byIH, b.ih)
	}
	for _, f := range b.files {
		l := t.byFile[f]
		if i := slices.Index(l, d); i >= 0 {
			l = slices.Delete(l, i, i+1)
		}
		if len(l) == 0 {
			delete(t.byFile, f)
		} else {
			t.byFile[f] = l
		}
	}
}

func (t *torrentStore) get(d string) *built { return t.m[d] }

func (t *torrentStore) put(d string, b *built) {
	if t.m == nil {
		t.m = make(map[string]*built)
	}
	if old := t.m[d]; old != nil {
		t.bytes -= len(old.torrent)
		t.unindex(d, old)
	} else {
		t.order = append(t.order, d)
	}
	t.m[d] = b
	t.bytes += len(b.torrent)
	t.index(d, b)
	for t.bytes > maxStoredBytes && len(t.m) > 1 {
		oldest := t.order[0]
		t.order = t.order[1:]
		if oldest != d {
			t.remove(oldest)
		} else {
			t.order = append(t.order, d)
		}
	}
	if len(t.order) > 2*len(t.m)+16 {
		live := t.order[:0]
		for _, k := range t.order {
			if t.m[k] != nil {
				live = append(live, k)
			}
		}
		t.order = live
	}
}

func (t *torrentStore) remove(d string) {
	if b := t.m[d]; b != nil {
		t.bytes -= len(b.torrent)
		delete(t.m, d)
		t.unindex(d, b)
	}
}

// freshness of a stored torrent against the files on disk.
type freshness int

const (
	fresh    freshness = iota
	stale              // a file was replaced: rebuild
	vanished           // a file is gone or no longer a regular file: forget
)

func (s *Service) check(b *built) freshness {
	for i, rel := range b.files {
		fi, err := s.statFile(rel)
		if err != nil {
			return vanished
		}
		was := b.infos[i]
		if !os.SameFile(fi, was) || fi.Size() != was.Size() || !fi.ModTime().Equal(was.ModTime()) {
			return stale
		}
	}
	return fresh
}

func (s *Service) lookup(digest string) *built {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.get(digest)
}

func (s *Service) forget(digest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.remove(digest)
}

// errUnknown answers a torrent the service does not (or no longer) know.
func errUnknown(digest string) error {
	return errorf(http.StatusPreconditionFailed, "torrent %s is not known here; POST its file list to build it", digest)
}

// torrent returns the up-to-date torrent for digest over files (canonical),
// building it if it is unknown or a file changed. Concurrent calls for one
// digest build once; a build runs once one of Config.MaxBuilds slots is
// free, and stops (waiting or hashing) once the contexts of all the calls
// waiting for it are done. Files hashed completely stay in the hash cache.
func (s *Service) torrent(ctx context.Context, digest string, files []string) ([]byte, error) {
	t, err := s.builds.Do(ctx, digest, func(ctx context.Context) ([]byte, error) {
		if b := s.lookup(digest); b != nil {
			switch s.check(b) {
			case fresh:
				s.torrentCacheHits.Add(1)
				return b.torrent, nil
			case vanished:
				s.forget(digest)
			}
		}
		if err := s.acquireSlot(ctx); err != nil {
			s.buildsAbandoned.Add(1)
			return nil, err
		}
		defer s.releaseSlot()
		start := time.Now()
		b, err := s.build(ctx, digest, files)
		if err != nil {
			if ctx.Err() != nil {
				s.buildsAbandoned.Add(1)
			}
			return nil, err
		}
		s.metrics.buildSeconds.Observe(time.Since(start).Seconds())
		s.mu.Lock()
		s.store.put(digest, b)
		s.mu.Unlock()
		s.torrentsBuilt.Add(1)
		return b.torrent, nil
	})
	if err != nil && ctx.Err() != nil {
		// The client has gone: nobody reads this answer.
		return nil, errorf(http.StatusServiceUnavailable, "torrent %s: request canceled: %v", digest, err)
	}
	return t, err
}

// acquireSlot waits for one of the Config.MaxBuilds build slots, or for ctx.
func (s *Service) acquireSlot(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
	default:
		s.buildsWaiting.Add(1)
		defer s.buildsWaiting.Add(-1)
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a build slot: %w", context.Cause(ctx))
		}
	}
	s.buildsRunning.Add(1)
	return nil
}

func (s *Service) releaseSlot() {
	s.buildsRunning.Add(-1)
	<-s.slots
}

// build hashes files (through the cache) and encodes their torrent. It
// stops at the first file that cannot be hashed, or once ctx is done.
func (s *Service) build(ctx context.Context, digest string, files []string) (*built, error) {
	public := s.PublicURL()
	if public == "" {
		return nil, errors.New("the service's public URL is not known before it listens")
	}
	mf := make([]torrentfile.File, len(files))
	infos := make([]os.FileInfo, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hashWorkers)
	for i, rel := range files {
		if gctx.Err() != nil {
			break // a file failed, or every client has gone
		}
		g.Go(func() error {
			// HashesIn checks that rel is a regular file before opening
			// it, and answers cached files from a stat alone.
			h, fi, err := s.hashes.HashesIn(gctx, s.root, rel)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("building torrent %s: %w", digest, context.Cause(ctx))
				}
				return errorf(http.StatusBadRequest, "file %q cannot be hashed: %v", rel, err)
			}
			mf[i] = torrentfile.File{Path: rel, Hashes: h}
			infos[i] = fi
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("building torrent %s: %w", digest, context.Cause(ctx))
	}
	announce := s.cfg.Trackers
	if len(announce) == 0 {
		announce = []string{api.AnnounceURL(public)}
	}
	t, ih, err := torrentfile.Build(torrentfile.Name(digest), mf, torrentfile.Options{
		Announce: announce,
		WebSeeds: []string{api.WebseedURL(public)},
		Mirrors:  s.cfg.Mirrors,
	})
	if err != nil {
		return nil, fmt.Errorf("building torrent %s: %w", digest, err)
	}
	return &built{torrent: t, ih: ih, files: files, infos: infos}, nil
}

func (s *Service) serveTorrent(w http.ResponseWriter, r *http.Request, digest string) error {
	s.torrentRequests.Add(1)
	if !batch.ValidDigest(digest) {
		return errorf(http.StatusBadRequest, "malformed batch digest %q: want %d lowercase hex digits", digest, batch.DigestLen)
	}
	var t []byte
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		b := s.lookup(digest)
		if b == nil {
			return errUnknown(digest)
		}
		t, err = s.torrent(r.Context(), digest, b.files)
		if err != nil {
			var he *httpError
			if errors.As(err, &he) && he.code == http.StatusBadRequest {
				// A file vanished while rebuilding.
				s.forget(digest)
				return errUnknown(digest)
			}
			return err
		}
	case http.MethodPost:
		files, err := s.readBatch(w, r, digest)
		if err != nil {
			return err
		}
		// Every file is checked by torrent: a stored torrent's by check
		// (a vanished file makes it build), a build's by HashesIn.
		if t, err = s.torrent(r.Context(), digest, files); err != nil {
			return err
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		return errorf(http.StatusMethodNotAllowed, "method %s not allowed for torrents", r.Method)
	}
	w.Header().Set("Content-Type", "application/x-bittorrent")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(t)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(t)
	}
	return nil
}

// serveInfohash answers a GET for the batch torrent the service built with
// the info hash ih (hex): an agent asks it before it serves another host's
// batch, so that it serves only batches this service vouches for.
func (s *Service) serveInfohash(w http.ResponseWriter, r *http.Request, ihHex string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return errorf(http.StatusMethodNotAllowed, "method %s not allowed for torrents by info hash", r.Method)
	}
	var ih [20]byte
	if len(ihHex) != 40 || strings.ToLower(ihHex) != ihHex {
		return errorf(http.StatusBadRequest, "malformed info hash %q: want 40 lowercase hex digits", ihHex)
	}
	if _, err := hex.Decode(ih[:], []byte(ihHex)); err != nil {
		return errorf(http.StatusBadRequest, "malformed info hash %q: want 40 lowercase hex digits", ihHex)
	}
	s.mu.Lock()
	d, ok := s.store.byIH[ih]
	var b *built
	if ok {
		b = s.store.get(d)
	}
	s.mu.Unlock()
	if b == nil {
		return errorf(http.StatusNotFound, "no batch torrent with info hash %s was built here", ihHex)
	}
	t, err := s.torrent(r.Context(), d, b.files)
	if err != nil {
		return err
	}
	if mi, _, _, err := torrentfile.Parse(t); err != nil || mi.HashInfoBytes() != ih {
		return errorf(http.StatusNotFound, "the batch of info hash %s has changed since", ihHex)
	}
	w.Header().Set("Content-Type", "application/x-bittorrent")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(t)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(t)
	}
	return nil
}

// related returns the info hashes of the stored batches that share files
// with the batch of info hash ih (the embedded tracker's SetRelated).
func (s *Service) related(ih [20]byte) [][20]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.related(ih, 16)
}

// readBatch decodes and checks a POST body (api.TorrentRequest) against digest
// and returns the files in canonical order.
func (s *Service) readBatch(w http.ResponseWriter, r *http.Request, digest string) ([]string, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, errorf(http.StatusUnsupportedMediaType, "Content-Type %q: want application/json", ct)
		}
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	var req api.TorrentRequest
	err := dec.Decode(&req)
	if err == nil {
		if err = dec.Decode(&struct{}{}); err == io.EOF {
			err = nil
		} else if err == nil {
			err = errors.New("data after the JSON object")
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body larger than the limit of %d bytes", mbe.Limit)
		}
		return nil, errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if len(req.Files) == 0 {
		return nil, errorf(http.StatusBadRequest, `body has no "files"`)
	}
	if len(req.Files) > s.cfg.MaxFiles {
		return nil, errorf(http.StatusRequestEntityTooLarge, "batch has %d files, more than the limit of %d", len(req.Files), s.cfg.MaxFiles)
	}
	files, err := batch.Canonical(req.Files)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid file path: %v", err)
	}
	got, err := batch.Digest(files)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if got != digest {
		return nil, errorf(http.StatusBadRequest, "digest mismatch: the files have digest %s, the URL names %s", got, digest)
	}
	return files, nil
}
