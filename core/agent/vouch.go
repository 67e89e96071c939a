package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

const (
	// placeTimeout bounds how long a fetch's data is held for its client
	// after the fetch is done (the client copies the files, then hangs up).
	placeTimeout = 2 * time.Minute
	// fetchStall ends a fetch whose torrent has made no progress for this
	// long, whatever its client's own stall timeout.
	fetchStall = 5 * time.Minute
)

// vouch checks a fetch request of a client other than root and the agent's
// user: its torrent must be the one the configured service serves for the
// batch it holds, and its mirrors must be configured ones. The agent then
// contacts no URL its configuration does not name (the torrent's webseeds
// and trackers are the service's), and stores and seeds only what the
// service vouches for.
func (a *Agent) vouch(ctx context.Context, req control.Request, info *metainfo.Info) error {
	if a.cfg.Service == "" {
		return errors.New("this agent has no service configured: only root and the agent's user may fetch through it")
	}
	for _, m := range req.Mirrors {
		if !slices.ContainsFunc(a.cfg.Mirrors, func(c string) bool { return sameBase(c, m) }) && !sameBase(a.cfg.Service, m) {
			return fmt.Errorf("mirror %s is not one of the agent's configured mirrors", m)
		}
	}
	spans, err := torrentfile.Layout(info)
	if err != nil {
		return fmt.Errorf("torrent: %w", err)
	}
	var rels []string
	for _, sp := range spans {
		rels = append(rels, sp.Path)
	}
	digest, err := batch.Digest(rels)
	if err != nil {
		return fmt.Errorf("torrent: %w", err)
	}
	b, err := askService(ctx, api.TorrentURL(a.cfg.Service, digest), 30*time.Second)
	if err != nil {
		return err
	}
	if !bytes.Equal(b, req.Torrent) {
		return errors.New("the torrent is not the one the service serves for its batch")
	}
	return nil
}

// askService GETs the torrent at u from the agent's configured service
// within timeout: the service's answer is what vouches for a batch.
func askService(ctx context.Context, u string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the service: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the service does not vouch for it (%s)", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, control.MaxRequest))
	if err != nil {
		return nil, fmt.Errorf("asking the service: %w", err)
	}
	return b, nil
}

// sameBase reports whether two base URLs are the same, trailing slash aside.
func sameBase(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}
