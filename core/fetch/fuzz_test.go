package fetch

import (
	"strings"
	"testing"
)

// FuzzParseBatch feeds arbitrary batch lists to ParseBatch: it never panics,
// and what it accepts has a URL and an output per item and 32-byte sums.
func FuzzParseBatch(f *testing.F) {
	f.Add("http://m/a.rpm /tmp/a.rpm sha256:" + strings.Repeat("ab", 32) + "\n# c\n\nhttp://m/b /tmp/b\n")
	f.Add("http://m/a.rpm")
	f.Add("a b sha256:zz")
	f.Add("a b c d")
	f.Add("\x00 \x00")
	f.Fuzz(func(t *testing.T, s string) {
		items, err := ParseBatch(strings.NewReader(s))
		if err != nil {
			return
		}
		if len(items) == 0 {
			t.Fatal("accepted an empty batch")
		}
		for _, it := range items {
			if it.URL == "" || it.Output == "" || strings.ContainsAny(it.URL+it.Output, " \t\n") {
				t.Fatalf("accepted item %+v", it)
			}
			if it.SHA256 != nil && len(it.SHA256) != 32 {
				t.Fatalf("accepted a %d-byte sha256", len(it.SHA256))
			}
		}
	})
}

// FuzzExpectations feeds arbitrary torrents (a service answering garbage or
// lying) to the client's check of the batch torrent: it never panics, and
// what it accepts names exactly the batch.
func FuzzExpectations(f *testing.F) {
	f.Add([]byte("d4:infod5:filesld6:lengthi5e4:pathl1:aeed6:lengthi3e4:pathl1:b1:ceee4:name1:n12:piece lengthi16384e6:pieces40:0123456789012345678901234567890123456789ee"))
	f.Add([]byte("d4:infod5:filesld6:lengthi-5e4:pathl1:aeed6:lengthi3e4:pathl1:b1:ceee4:name1:n12:piece lengthi16384e6:pieces20:01234567890123456789ee"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		want, err := expectations(data, []string{"a", "b/c"})
		if err != nil {
			return
		}
		if len(want) != 2 {
			t.Fatalf("accepted a torrent with %d files", len(want))
		}
		for p, w := range want {
			if w.size < 0 || len(w.pieces) != 20*int(max(0, (w.size+pl-1)/pl)) {
				t.Fatalf("%s: size %d with %d hash bytes", p, w.size, len(w.pieces))
			}
		}
	})
}
