package fetch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// plainHTTP downloads every item from its URL, each to a temporary file
// beside its output, checks length and sha256, and renames it into place.
// A file over max bytes (0: no cap) is refused.
func plainHTTP(ctx context.Context, cfg Config, items []Item, max int64) (Result, error) {
	hc := httpClient(cfg)
	defer hc.CloseIdleConnections()
	var res Result
	for _, it := range items {
		n, err := download(ctx, hc, cfg.StallTimeout, it, max, nil, nil, nil)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", it.URL, err)
		}
		res.Files++
		res.Bytes += n
		res.BytesFromHTTP += n
	}
	return res, nil
}

// download fetches it.URL to a temporary file beside it.Output, checks it
// and renames it into place. Without want, the check is the length the
// server sent and it.SHA256; with want, the size of the torrent's file and
// it.SHA256, or without one its piece hashes, as the bytes arrive (see
// check). placed, if not nil, gets the placed file opened read-only (the
// caller closes it). counted, if not nil, is told of every byte received.
func download(ctx context.Context, hc *http.Client, stall time.Duration, it Item, max int64, want *expect, placed func(*os.File), counted func(int)) (_ int64, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, it.URL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	var body io.Reader = resp.Body
	if max > 0 {
		if resp.ContentLength > max {
			return 0, fmt.Errorf("%d bytes is over the cap of %d (http-only-max-size)", resp.ContentLength, max)
		}
		body = io.LimitReader(resp.Body, max+1)
	}
	if want != nil && resp.ContentLength >= 0 && resp.ContentLength != want.size {
		return 0, fmt.Errorf("the server sends %d bytes, the torrent says %d", resp.ContentLength, want.size)
	}
	dir, base := filepath.Split(it.Output)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".pkgtorrent-*")
	if err != nil {
		return 0, fmt.Errorf("creating temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// Abort when no byte arrives for the stall timeout.
	timer := time.AfterFunc(stall, func() { cancel(fmt.Errorf("no data for %s", stall)) })
	defer timer.Stop()
	in := io.Reader(stallReader{body, timer, stall})
	if counted != nil {
		in = countReader{in, counted}
	}
	var n int64
	if want != nil {
		w := writers.Get().(*bufio.Writer)
		defer writers.Put(w)
		w.Reset(&errWriter{w: f})
		cw := &countWriter{w: w}
		w2 := *want
		w2.sha256 = it.SHA256
		err = check(io.TeeReader(in, cw), w2)
		if err == nil {
			err = w.Flush()
		}
		n = cw.n
	} else {
		h := sha256.New()
		n, err = io.Copy(io.MultiWriter(f, h), in)
		if err == nil && it.SHA256 != nil && !bytes.Equal(h.Sum(nil), it.SHA256) {
			return 0, fmt.Errorf("sha256 %x does not match the expected %x", h.Sum(nil), it.SHA256)
		}
	}
	if err != nil {
		if c := context.Cause(ctx); c != nil {
			err = c
		}
		return 0, fmt.Errorf("downloading: %w", err)
	}
	if max > 0 && n > max {
		return 0, fmt.Errorf("more than the cap of %d bytes (http-only-max-size)", max)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return 0, fmt.Errorf("got %d bytes, want %d", n, resp.ContentLength)
	}
	if err := f.Chmod(0o644); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	var ro *os.File
	if placed != nil {
		if ro, err = os.Open(f.Name()); err != nil {
			return 0, err
		}
	}
	if err := os.Rename(f.Name(), it.Output); err != nil {
		if ro != nil {
			ro.Close()
		}
		return 0, fmt.Errorf("placing %s: %w", it.Output, err)
	}
	if ro != nil {
		placed(ro)
	}
	return n, nil
}

// writers are the write buffers of downloads checked against a torrent, a
// thousand small files in a batch.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 256<<10) }}

// countReader tells of every byte it reads.
type countReader struct {
	r io.Reader
	f func(int)
}

func (c countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.f(n)
	}
	return n, err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// stallReader pushes the stall timer back on every read that returns data.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	stall time.Duration
}

func (s stallReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if n > 0 {
		s.timer.Reset(s.stall)
	}
	return n, err
}
