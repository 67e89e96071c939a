package tracker

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/anacrolix/torrent/bencode"
)

// AnnounceEvent tells the HTTP tracker at announce an event ("stopped",
// "completed") of the peer with this id and port for the torrent ih, a
// peer with nothing left to download. The agent sends them itself: the
// engine announces on its own schedule, and not at all when it closes.
func AnnounceEvent(c *http.Client, announce string, ih [20]byte, id [20]byte, port int, event string) error {
	_, err := Announce(c, announce, ih, id, port, event, 0)
	return err
}

// Announce announces the peer with this id and port for the torrent ih to
// the HTTP tracker at announce, with event ("" for none) and left bytes
// still to download, and returns the peers the tracker sent back (compact
// IPv4 and IPv6 lists, or a dictionary list).
func Announce(c *http.Client, announce string, ih [20]byte, id [20]byte, port int, event string, left int64) ([]netip.AddrPort, error) {
	u, err := url.Parse(announce)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("tracker %q is not HTTP", announce)
	}
	q := u.Query()
	q.Set("info_hash", string(ih[:]))
	q.Set("peer_id", string(id[:]))
	q.Set("port", strconv.Itoa(port))
	q.Set("uploaded", "0")
	q.Set("downloaded", "0")
	q.Set("left", strconv.FormatInt(left, 10))
	if event != "" {
		q.Set("event", event)
	}
	q.Set("compact", "1")
	u.RawQuery = queryEncode(q)
	resp, err := c.Get(u.String())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("announce: %s", resp.Status)
	}
	var ar struct {
		Failure string        `bencode:"failure reason"`
		Peers   bencode.Bytes `bencode:"peers"`
		Peers6  bencode.Bytes `bencode:"peers6"`
	}
	if err := bencode.NewDecoder(bytes.NewReader(body)).Decode(&ar); err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	if ar.Failure != "" {
		return nil, fmt.Errorf("announce: %s", ar.Failure)
	}
	var peers []netip.AddrPort
	var compact string
	if err := bencode.Unmarshal(ar.Peers, &compact); err == nil {
		peers = append(peers, decodeCompact(compact, 4)...)
	} else {
		var list []struct {
			IP   string `bencode:"ip"`
			Port uint16 `bencode:"port"`
		}
		if err := bencode.Unmarshal(ar.Peers, &list); err == nil {
			for _, p := range list {
				if a, err := netip.ParseAddr(p.IP); err == nil {
					peers = append(peers, netip.AddrPortFrom(a, p.Port))
				}
			}
		}
	}
	if len(ar.Peers6) > 0 {
		var compact6 string
		if err := bencode.Unmarshal(ar.Peers6, &compact6); err == nil {
			peers = append(peers, decodeCompact(compact6, 16)...)
		}
	}
	return peers, nil
}

// decodeCompact decodes a compact peer list of addresses of size bytes each,
// followed by a port.
func decodeCompact(s string, size int) []netip.AddrPort {
	var out []netip.AddrPort
	for i := 0; i+size+2 <= len(s); i += size + 2 {
		a, ok := netip.AddrFromSlice([]byte(s[i : i+size]))
		if !ok {
			continue
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(s[i+size])<<8|uint16(s[i+size+1])))
	}
	return out
}

// Scrape asks the HTTP tracker at announce how many peers (seeders and
// leechers, and peers of related torrents: RelatedKey) it knows for ih
// (BEP 48: the scrape URL replaces the last "announce" of the announce
// URL).
func Scrape(c *http.Client, announce string, ih [20]byte) (int, error) {
	n, err := ScrapeCounts(c, announce, ih)
	return n.Complete + n.Incomplete + n.Related, err
}

// Counts are what a tracker's scrape says of a torrent.
type Counts struct {
	// Complete and Incomplete are its seeders and leechers; Related the
	// agents of related batches (RelatedKey, the embedded tracker only).
	Complete, Incomplete, Related int
}

// ScrapeCounts is Scrape with the counts apart.
func ScrapeCounts(c *http.Client, announce string, ih [20]byte) (Counts, error) {
	u, err := url.Parse(announce)
	if err != nil {
		return Counts{}, err
	}
	i := strings.LastIndex(u.Path, "/announce")
	if i < 0 || (u.Scheme != "http" && u.Scheme != "https") {
		return Counts{}, fmt.Errorf("tracker %q has no scrape convention", announce)
	}
	u.Path = u.Path[:i] + "/scrape" + u.Path[i+len("/announce"):]
	q := u.Query()
	q.Set("info_hash", string(ih[:]))
	u.RawQuery = queryEncode(q)
	resp, err := c.Get(u.String())
	if err != nil {
		return Counts{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Counts{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Counts{}, fmt.Errorf("scrape: %s", resp.Status)
	}
	var sr struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
			Related    int `bencode:"x-pkgtorrent-related"`
		} `bencode:"files"`
	}
	if err := bencode.NewDecoder(bytes.NewReader(body)).Decode(&sr); err != nil {
		return Counts{}, fmt.Errorf("scrape: %w", err)
	}
	f := sr.Files[string(ih[:])]
	return Counts{f.Complete, f.Incomplete, f.Related}, nil
}

// queryEncode encodes q with spaces as %20, not +: trackers such as
// opentracker decode only percent escapes, so an info hash or peer id with a
// 0x20 byte sent as + named another torrent or peer (+ itself is %2B).
func queryEncode(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "+", "%20")
}
