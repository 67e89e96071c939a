// Package torrentfile builds pkgtorrent's deterministic batch torrents: the
// piece-length and padding rules, per-file piece hashes, and the bencoded
// .torrent itself.
//
// Every file but the last is followed by a BEP 47 padding file up to the next
// piece boundary, so every file starts on a piece boundary and its piece hashes
// do not depend on the batch it is in. Pad files are named ".pad/<length>" and
// carry attr "p"; they are never stored, and webseeds answer them with zeros.
package torrentfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// PieceLength is the fixed piece length of every batch torrent: 64 KiB.
//
// Pad bytes never cross the wire and are never stored, so the piece length
// is chosen for CPU: the engine's costs per piece (request planning over
// every piece, a HAVE to every peer, one hash check) fall with fewer, larger
// pieces, while a piece is only shared once it is whole, and a file's last
// piece is hashed with its padding zeros (half a piece per file on average).
// Requests stay 16 KiB blocks, as every BitTorrent client expects. A change
// of piece length changes every batch's info hash: clients and services of
// different piece lengths do not share torrents (the client's checks refuse
// the other's, and the package manager downloads as usual).
const PieceLength = 64 << 10

// PadDir is the directory of BEP 47 padding files inside a torrent.
const PadDir = ".pad"

// PadLength is the padding rule: the bytes that follow a file of size bytes
// so that the next file starts on a piece boundary.
func PadLength(size int64) int64 {
	return (PieceLength - size%PieceLength) % PieceLength
}

// NumPieces is the number of pieces a file of size bytes spans.
func NumPieces(size int64) int {
	return int((size + PieceLength - 1) / PieceLength)
}

// PadPath returns the torrent path of a padding file of n bytes.
func PadPath(n int64) []string {
	return []string{PadDir, strconv.FormatInt(n, 10)}
}

// ParsePadPath reports whether the slash-separated torrent path p names a
// padding file, and its length.
func ParsePadPath(p string) (int64, bool) {
	rest, ok := strings.CutPrefix(p, PadDir+"/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n <= 0 || n >= PieceLength || strconv.FormatInt(n, 10) != rest {
		return 0, false
	}
	return n, true
}

// Name is the info name of the batch torrent with the given digest.
func Name(digest string) string {
	return "pkgtorrent-" + digest[:16]
}

// File is one batch file with its piece hashes.
type File struct {
	// Path is the repository-relative path.
	Path string
	// Hashes is what Hash returned for the file.
	Hashes Hashes
}

// Options are the parts of a torrent outside the info dictionary.
type Options struct {
	// Announce lists tracker announce URLs; the first is the main one.
	Announce []string
	// WebSeeds lists BEP 19 webseed URLs (each ending in "/").
	WebSeeds []string
	// Mirrors lists extra mirror base URLs: repository roots, where a file's
	// URL is the base plus its path (no info name). Stock clients ignore them.
	Mirrors []string
}

// MirrorsKey is the top-level .torrent key that carries Options.Mirrors.
const MirrorsKey = "x-pkgtorrent-mirrors"

type torrentFile struct {
	Announce     string        `bencode:"announce,omitempty"`
	AnnounceList [][]string    `bencode:"announce-list,omitempty"`
	Info         bencode.Bytes `bencode:"info"`
	URLList      []string      `bencode:"url-list,omitempty"`
	Mirrors      []string      `bencode:"x-pkgtorrent-mirrors,omitempty"`
}

// Info returns the info dictionary for files, in the order given (callers
// pass the canonical batch order).
func Info(name string, files []File) (*metainfo.Info, error) {
	if len(files) == 0 {
		return nil, errors.New("no files")
	}
	info := &metainfo.Info{Name: name, PieceLength: PieceLength}
	var pieces []byte
	for i, f := range files {
		last := i == len(files)-1
		if err := f.Hashes.check(); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		info.Files = append(info.Files, metainfo.FileInfo{Length: f.Hashes.Size, Path: strings.Split(f.Path, "/")})
		pieces = append(pieces, f.Hashes.Pieces...)
		if pad := PadLength(f.Hashes.Size); pad != 0 {
			if last {
				// The last piece of the torrent ends with the file.
				pieces = append(pieces[:len(pieces)-20], f.Hashes.Tail[:]...)
			} else {
				info.Files = append(info.Files, metainfo.FileInfo{
					Length:            pad,
					Path:              PadPath(pad),
					ExtendedFileAttrs: metainfo.ExtendedFileAttrs{Attr: "p"},
				})
			}
		}
	}
	info.Pieces = pieces
	return info, nil
}

// Build returns the bencoded .torrent for files and its info hash. The same
// files and options give the same bytes: there is no creation date, and
// bencoding sorts keys.
func Build(name string, files []File, opts Options) ([]byte, metainfo.Hash, error) {
	info, err := Info(name, files)
	if err != nil {
		return nil, metainfo.Hash{}, err
	}
	infoBytes, err := bencode.Marshal(info)
	if err != nil {
		return nil, metainfo.Hash{}, fmt.Errorf("encoding info: %w", err)
	}
	tf := torrentFile{Info: infoBytes, URLList: opts.WebSeeds, Mirrors: opts.Mirrors}
	if len(opts.Announce) > 0 {
		tf.Announce = opts.Announce[0]
		if len(opts.Announce) > 1 {
			for _, a := range opts.Announce {
				tf.AnnounceList = append(tf.AnnounceList, []string{a})
			}
		}
	}
	t, err := bencode.Marshal(tf)
	if err != nil {
		return nil, metainfo.Hash{}, fmt.Errorf("encoding torrent: %w", err)
	}
	return t, metainfo.HashBytes(infoBytes), nil
}

// Parse decodes a batch .torrent and returns the anacrolix metainfo, its
// info, and the extra mirror bases.
func Parse(data []byte) (*metainfo.MetaInfo, *metainfo.Info, []string, error) {
	var mi metainfo.MetaInfo
	if err := bencode.Unmarshal(data, &mi); err != nil {
		return nil, nil, nil, fmt.Errorf("decoding torrent: %w", err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("decoding torrent info: %w", err)
	}
	if info.PieceLength != PieceLength || !info.IsDir() {
		return nil, nil, nil, fmt.Errorf("not a pkgtorrent batch torrent (piece length %d)", info.PieceLength)
	}
	var extra struct {
		Mirrors []string `bencode:"x-pkgtorrent-mirrors"`
	}
	if err := bencode.Unmarshal(data, &extra); err != nil {
		return nil, nil, nil, fmt.Errorf("decoding torrent mirrors: %w", err)
	}
	return &mi, &info, extra.Mirrors, nil
}
