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

	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/metainfo"
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

// writeError answers err as JSON {"error": ...}, never cached. Errors
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
	json.NewEncoder(w).Encode(map[string]string{"error": he.msg})
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, "/")
	if !ok {
		writeError(w, r, errorf(http.StatusBadRequest, "request path %q is not absolute", r.URL.Path))
		return
	}
	if p == ".pkgtorrent" || strings.HasPrefix(p, ".pkgtorrent/") {
		s.serveAPI(w, r, strings.TrimPrefix("/"+p, APIPrefix))
		return
	}
	if err := s.serveFile(w, r, p, false); err != nil {
		writeError(w, r, err)
	}
}

func (s *Service) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	if !strings.HasPrefix(r.URL.Path, APIPrefix) {
		writeError(w, r, errorf(http.StatusNotFound, "no API endpoint %q (the API is under %s)", r.URL.Path, APIPrefix))
		return
	}
	var err error
	switch {
	case rest == "stats":
		err = s.serveStats(w, r)
	case rest == "metrics":
		s.metrics.ServeHTTP(w, r)
	case rest == "announce" && s.tracker != nil:
		s.tracker.ServeAnnounce(w, r)
	case rest == "scrape" && s.tracker != nil:
		s.tracker.ServeScrape(w, r)
	case strings.HasPrefix(rest, "torrent/"):
		err = s.serveTorrent(w, r, strings.TrimPrefix(rest, "torrent/"))
	case strings.HasPrefix(rest, "webseed/"):
		err = s.serveWebseed(w, r, strings.TrimPrefix(rest, "webseed/"))
	default:
		err = errorf(http.StatusNotFound, "no API endpoint %q", r.URL.Path)
	}
	if err != nil {
		writeError(w, r, err)
	}
}

func (s *Service) serveStats(w http.ResponseWriter, r *http.Request) error {
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
	n, ok := metainfo.ParsePadPath(p)
	if !ok {
		return s.serveFile(w, r, p, true)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	ew := s.egress(w, r.Context(), &s.padBytesSent)
	http.ServeContent(ew, r, "", time.Time{}, io.NewSectionReader(zeros{}, 0, n))
	return nil
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
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
