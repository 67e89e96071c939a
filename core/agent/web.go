package agent

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/webseed"

	pmeta "github.com/pkgtorrent/pkgtorrent/core/metainfo"
)

// padQuery marks a webseed request for a BEP 47 padding file. Escaped
// repository paths never contain a '?', so no real file carries it.
const padQuery = "pkgtorrent-pad"

// torrentPath maps a torrent path (info name first) to a path under a BEP 19
// webseed URL, marking padding files.
func torrentPath(comps []string) string {
	return webseed.EscapePath(comps) + padMark(comps[1:])
}

// mirrorPath maps a torrent path (info name first) to a path under a
// repository root: the info name is dropped; padding files are marked.
func mirrorPath(comps []string) string {
	return webseed.EscapePath(comps[1:]) + padMark(comps[1:])
}

func padMark(comps []string) string {
	if _, ok := pmeta.ParsePadPath(strings.Join(comps, "/")); ok {
		return "?" + padQuery
	}
	return ""
}

// padTransport answers webseed requests for BEP 47 padding files (marked by
// torrentPath and mirrorPath) with zeros locally, so that no pad byte
// crosses the wire from a webseed (a plain mirror has no such files).
type padTransport struct{ next http.RoundTripper }

func (p padTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.RawQuery != padQuery {
		return p.next.RoundTrip(req)
	}
	i := strings.LastIndex(req.URL.Path, "/"+pmeta.PadDir+"/")
	if i < 0 {
		return nil, fmt.Errorf("pad request %q has no pad path", req.URL)
	}
	n, ok := pmeta.ParsePadPath(req.URL.Path[i+1:])
	if !ok {
		return nil, fmt.Errorf("pad request %q has no pad path", req.URL)
	}
	start, end := int64(0), n-1
	status := http.StatusOK
	h := http.Header{}
	if r := req.Header.Get("Range"); r != "" {
		if _, err := fmt.Sscanf(r, "bytes=%d-%d", &start, &end); err != nil || start > end || end >= n {
			return nil, fmt.Errorf("bad range %q for a %d-byte pad", r, n)
		}
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, n))
	}
	length := end - start + 1
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	return &http.Response{
		Status: http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length, Request: req,
		Body: io.NopCloser(io.LimitReader(zeros{}, length)),
	}, nil
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// scrape asks an HTTP tracker how many peers (seeders and leechers) it knows
// for ih (BEP 48: the scrape URL replaces the last "announce" of the
// announce URL).
// announceStopped sends an HTTP tracker a "stopped" announce for ih from
// the peer id and port the engine announced with.
func announceStopped(c *http.Client, announce string, ih metainfo.Hash, id [20]byte, port int) error {
	return announceEvent(c, announce, ih, id, port, "stopped")
}

// announceEvent tells an HTTP tracker an event ("stopped", "completed") of
// this peer, which has nothing left to download.
func announceEvent(c *http.Client, announce string, ih metainfo.Hash, id [20]byte, port int, event string) error {
	u, err := url.Parse(announce)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("tracker %q is not HTTP", announce)
	}
	q := u.Query()
	q.Set("info_hash", string(ih[:]))
	q.Set("peer_id", string(id[:]))
	q.Set("port", strconv.Itoa(port))
	q.Set("uploaded", "0")
	q.Set("downloaded", "0")
	q.Set("left", "0")
	q.Set("event", event)
	q.Set("compact", "1")
	u.RawQuery = q.Encode()
	resp, err := c.Get(u.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("announce: %s", resp.Status)
	}
	return nil
}

func scrape(c *http.Client, announce string, ih metainfo.Hash) (int, error) {
	u, err := url.Parse(announce)
	if err != nil {
		return 0, err
	}
	i := strings.LastIndex(u.Path, "/announce")
	if i < 0 || (u.Scheme != "http" && u.Scheme != "https") {
		return 0, fmt.Errorf("tracker %q has no scrape convention", announce)
	}
	u.Path = u.Path[:i] + "/scrape" + u.Path[i+len("/announce"):]
	q := u.Query()
	q.Set("info_hash", string(ih[:]))
	u.RawQuery = q.Encode()
	resp, err := c.Get(u.String())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape: %s", resp.Status)
	}
	var sr struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
		} `bencode:"files"`
	}
	if err := bencode.NewDecoder(bytes.NewReader(body)).Decode(&sr); err != nil {
		return 0, fmt.Errorf("scrape: %w", err)
	}
	f := sr.Files[string(ih[:])]
	return f.Complete + f.Incomplete, nil
}
