package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/pkgtorrent/pkgtorrent/core/batch"
)

// MaxTorrentBytes bounds the torrent (or any answer) the client reads from
// the service.
const MaxTorrentBytes = 256 << 20

// StatusError is an answer of the service other than 200 OK.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Message is the service's ErrorBody message ("" if the body was not
	// an ErrorBody).
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("service: %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("service: %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Torrent gets the torrent of the batch of files (repository-relative
// paths, in any order) from the service whose file root is at the base URL
// service: a GET by the batch digest and, when the service does not know
// the digest yet (412), a POST of the canonical file list, which has the
// service build it. A nil hc is http.DefaultClient. An answer other than
// 200 OK is a *StatusError.
func Torrent(ctx context.Context, hc *http.Client, service string, files []string) ([]byte, error) {
	canon, err := batch.Canonical(files)
	if err != nil {
		return nil, err
	}
	digest, err := batch.Digest(canon)
	if err != nil {
		return nil, err
	}
	u := TorrentURL(service, digest)
	b, err := call(ctx, hc, http.MethodGet, u, nil)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusPreconditionFailed {
		body, err := json.Marshal(TorrentRequest{Files: canon})
		if err != nil {
			return nil, err
		}
		return call(ctx, hc, http.MethodPost, u, body)
	}
	return b, err
}

// GetStats reads the counters of the service whose file root is at the
// base URL service. A nil hc is http.DefaultClient.
func GetStats(ctx context.Context, hc *http.Client, service string) (Stats, error) {
	var st Stats
	b, err := call(ctx, hc, http.MethodGet, StatsURL(service), nil)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("service stats: %w", err)
	}
	return st, nil
}

// call sends one request (a POST when body is not nil) and returns the
// body of a 200 OK answer; any other answer is a *StatusError.
func call(ctx context.Context, hc *http.Client, method, u string, body []byte) ([]byte, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("service unreachable: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxTorrentBytes))
	if err != nil {
		return nil, fmt.Errorf("reading from service: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{Code: resp.StatusCode}
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil {
			se.Message = eb.Error
		}
		return nil, se
	}
	return b, nil
}
