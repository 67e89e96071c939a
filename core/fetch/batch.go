package fetch

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Item is one file to fetch.
type Item struct {
	// URL is where the package manager would download the file.
	URL string
	// Output is where the file must appear, complete and verified.
	Output string
	// SHA256 is the caller's expected digest, or nil.
	SHA256 []byte
}

// ParseBatch reads a batch list: one "URL OUTPUT [sha256:HEX]" per line;
// blank lines and lines starting with '#' are skipped.
func ParseBatch(r io.Reader) ([]Item, error) {
	var items []Item
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("batch line %d: want \"URL OUTPUT [sha256:HEX]\", got %d fields", n, len(f))
		}
		it := Item{URL: f[0], Output: f[1]}
		if len(f) == 3 {
			sum, err := ParseSHA256(f[2])
			if err != nil {
				return nil, fmt.Errorf("batch line %d: %w", n, err)
			}
			it.SHA256 = sum
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading batch: %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("batch is empty")
	}
	return items, nil
}

// ParseSHA256 parses "sha256:HEX".
func ParseSHA256(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return nil, fmt.Errorf("checksum %q: want sha256:HEX", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("checksum %q: not 64 hex digits", s)
	}
	return b, nil
}
