package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// chunkSize is the most bytes one write to a client waits for from the
// origin rate limiter, and the limiter's burst.
const chunkSize = 64 << 10

// httpError is an error with the HTTP status it is answered with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError answers err as JSON api.ErrorBody, never cached. Errors
// that are not *httpError are internal (500) and logged.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		slog.Error("pkgtorrent-service: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		he = &httpError{code: http.StatusInternalServerError, msg: err.Error()}
	}
	h := w.Header()
	allow := h.Get("Allow")
	for k := range h {
		delete(h, k) // ServeContent may have set Last-Modified etc.
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if he.code == http.StatusMethodNotAllowed {
		if allow == "" {
			allow = "GET, HEAD"
		}
		h.Set("Allow", allow)
	}
	w.WriteHeader(he.code)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: he.msg})
}

// endpoint is one entry of the service's route table: a kind of request
// path and the handler of its requests.
type endpoint struct {
	// path is the endpoint's path under api.Prefix ("" for the paths
	// outside the API); one ending in "/" is a subtree.
	path string
	// kind is the "handler" label of the endpoint's request metrics.
	kind string
	// serve answers a request; rest is the request path below path.
	serve func(s *Service, w http.ResponseWriter, r *http.Request, rest string) error
}

// routes is the service's one route table, for dispatch (serveHTTP) and for
// the request metrics' kinds (metrics.instrument): the API endpoints, then
// the files of the mirror tree and unknown API paths.
var routes = []endpoint{
	{api.TorrentPath, "torrent", (*Service).serveTorrent},
	{api.InfohashPath, "infohash", (*Service).serveInfohash},
	{api.WebseedPath, "webseed", (*Service).serveWebseed},
	{api.AnnouncePath, "announce", (*Service).serveAnnounce},
	{api.ScrapePath, "scrape", (*Service).serveScrape},
	{api.StatsPath, "stats", (*Service).serveStats},
	{api.MetricsPath, "metrics", (*Service).serveMetrics},
	fileRoute,
	otherRoute,
}

// fileRoute and otherRoute are the routes of the paths outside the API:
// the mirror tree's files, and unknown paths under the reserved directory.
var (
	fileRoute  = endpoint{"", "file", (*Service).serveTreeFile}
	otherRoute = endpoint{"", "other", (*Service).serveUnknown}
)

// route returns the route of the request path p and the rest of p below
// the route's path.
func route(p string) (endpoint, string) {
	rest, ok := strings.CutPrefix(p, api.Prefix)
	if !ok {
		if p == "/.pkgtorrent" || strings.HasPrefix(p, "/.pkgtorrent/") {
			return otherRoute, p
		}
		return fileRoute, p
	}
	for _, e := range routes {
		if e.path == "" {
			continue
		}
		if sub, ok := strings.CutPrefix(rest, e.path); ok && (sub == "" || strings.HasSuffix(e.path, "/")) {
			return e, sub
		}
	}
	return otherRoute, p
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	e, rest := route(r.URL.Path)
	if err := e.serve(s, w, r, rest); err != nil {
		writeError(w, r, err)
	}
}

// serveTreeFile serves the mirror tree's file at the request path p.
func (s *Service) serveTreeFile(w http.ResponseWriter, r *http.Request, p string) error {
	rel, ok := strings.CutPrefix(p, "/")
	if !ok {
		return errorf(http.StatusBadRequest, "request path %q is not absolute", p)
	}
	return s.serveFile(w, r, rel, false)
}

// serveUnknown answers a path under the reserved directory that names no
// API endpoint.
func (s *Service) serveUnknown(w http.ResponseWriter, r *http.Request, _ string) error {
	if !strings.HasPrefix(r.URL.Path, api.Prefix) {
		return errorf(http.StatusNotFound, "no API endpoint %q (the API is under %s)", r.URL.Path, api.Prefix)
	}
	return errorf(http.StatusNotFound, "no API endpoint %q", r.URL.Path)
}

func (s *Service) serveAnnounce(w http.ResponseWriter, r *http.Request, rest string) error {
	if s.tracker == nil {
		return s.serveUnknown(w, r, rest)
	}
	s.tracker.ServeAnnounce(w, r)
	return nil
}

func (s *Service) serveScrape(w http.ResponseWriter, r *http.Request, rest string) error {
	if s.tracker == nil {
		return s.serveUnknown(w, r, rest)
	}
	s.tracker.ServeScrape(w, r)
	return nil
}

func (s *Service) serveMetrics(w http.ResponseWriter, r *http.Request, _ string) error {
	s.metrics.ServeHTTP(w, r)
	return nil
}

func (s *Service) serveStats(w http.ResponseWriter, r *http.Request, _ string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "method %s not allowed for stats", r.Method)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(s.Stats())
}

// statFile checks that rel (a clean path) names a regular file inside the
// root, following symbolic links that stay inside it.
func (s *Service) statFile(rel string) (os.FileInfo, error) {
	fi, err := s.root.Stat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errorf(http.StatusNotFound, "file %q not found", rel)
	case err != nil:
		return nil, errorf(http.StatusNotFound, "file %q cannot be served: %v", rel, err)
	case !fi.Mode().IsRegular():
		return nil, errorf(http.StatusNotFound, "%q is not a regular file", rel)
	}
	return fi, nil
}

// openFile opens the regular file rel inside the root.
func (s *Service) openFile(rel string) (*os.File, os.FileInfo, error) {
	// Stat first: opening a FIFO or device could block or have effects.
	before, err := s.statFile(rel)
	if err != nil {
		return nil, nil, err
	}
	f, err := s.root.Open(rel)
	if err != nil {
		return nil, nil, errorf(http.StatusNotFound, "file %q cannot be opened: %v", rel, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !os.SameFile(before, fi) {
		f.Close()
		return nil, nil, errorf(http.StatusNotFound, "file %q changed while being opened", rel)
	}
	return f, fi, nil
}

func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// serveFile serves the repository file at p; webseed tells whether the
// request came through the webseed path.
func (s *Service) serveFile(w http.ResponseWriter, r *http.Request, p string, webseed bool) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "method %s not allowed for files", r.Method)
	}
	if p == "" {
		return errorf(http.StatusNotFound, "no index of the mirror root")
	}
	rel, err := batch.CleanPath(p)
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid file path: %v", err)
	}
	f, fi, err := s.openFile(rel)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", contentType(rel))
	counters := []*atomic.Int64{&s.fileBytesSent}
	if webseed {
		counters = append(counters, &s.webseedBytesSent)
	}
	ew := s.egress(w, r.Context(), counters...)
	http.ServeContent(ew, r, "", fi.ModTime(), f)
	return nil
}

// serveWebseed serves the BEP 19 webseed path "<info name>/<torrent path>":
// padding files as zeros, other paths as repository files.
func (s *Service) serveWebseed(w http.ResponseWriter, r *http.Request, rest string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "method %s not allowed for the webseed", r.Method)
	}
	name, p, ok := strings.Cut(rest, "/")
	if !ok || name == "" {
		return errorf(http.StatusBadRequest, "webseed path %q is not <torrent name>/<file path>", rest)
	}
	n, ok := torrentfile.ParsePadPath(p)
	if !ok {
		return s.serveFile(w, r, p, true)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	ew := s.egress(w, r.Context(), &s.padBytesSent)
	http.ServeContent(ew, r, "", time.Time{}, io.NewSectionReader(torrentfile.Zeros{}, 0, n))
	return nil
}

// egress wraps w so that the body goes out at most chunkSize bytes at a
// time, each waiting on the origin rate limiter, and successful body bytes
// are added to each counter.
func (s *Service) egress(w http.ResponseWriter, ctx context.Context, counters ...*atomic.Int64) http.ResponseWriter {
	return &egressWriter{ResponseWriter: w, ctx: ctx, limiter: s.limiter, counters: counters, status: http.StatusOK}
}

type egressWriter struct {
	http.ResponseWriter
	ctx      context.Context
	limiter  *rate.Limiter
	counters []*atomic.Int64
	status   int
}

func (w *egressWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *egressWriter) Write(p []byte) (int, error) {
	if w.status >= 300 {
		return w.ResponseWriter.Write(p) // an error body, not file data
	}
	written := 0
	for len(p) > 0 {
		c := min(len(p), chunkSize)
		if w.limiter != nil {
			if err := w.limiter.WaitN(w.ctx, c); err != nil {
				return written, fmt.Errorf("origin rate limit: %w", err)
			}
		}
		n, err := w.ResponseWriter.Write(p[:c])
		written += n
		for _, c := range w.counters {
			c.Add(int64(n))
		}
		if err != nil {
			return written, err
		}
		p = p[c:]
	}
	return written, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *egressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeDeadlines wraps h so that every write to a client must complete
// within Config.WriteTimeout: the connection's write deadline is moved
// forward before each write of at most chunkSize bytes, and once more when
// h returns, for the final flush of the response. A client that stops
// reading is thus dropped after WriteTimeout, however long the response,
// while time spent before the first write (building a torrent) does not
// count. http.Server's WriteTimeout, one deadline for the whole response,
// would cut off large downloads instead.
func (s *Service) writeDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: s.cfg.WriteTimeout}
		h.ServeHTTP(dw, r)
		dw.extend()
	})
}

// deadlineWriter moves the write deadline forward before each write.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// extend sets the write deadline to timeout from now. Writers without a
// deadline (not a network connection) are left as they are.
func (w *deadlineWriter) extend() {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
}

func (w *deadlineWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := min(len(p), chunkSize)
		w.extend()
		n, err := w.ResponseWriter.Write(p[:c])
		written += n
		if err != nil {
			return written, err
		}
		p = p[c:]
	}
	return written, nil
}

// Flush sends buffered data to the client, within the write deadline.
func (w *deadlineWriter) Flush() {
	w.extend()
	w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
