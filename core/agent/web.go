package agent

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/anacrolix/torrent/webseed"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
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
	if _, ok := torrentfile.ParsePadPath(strings.Join(comps, "/")); ok {
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
	i := strings.LastIndex(req.URL.Path, "/"+torrentfile.PadDir+"/")
	if i < 0 {
		return nil, fmt.Errorf("pad request %q has no pad path", req.URL)
	}
	n, ok := torrentfile.ParsePadPath(req.URL.Path[i+1:])
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
		Body: io.NopCloser(io.LimitReader(torrentfile.Zeros{}, length)),
	}, nil
}
