package fetch

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseBatch(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	sumBytes := bytes.Repeat([]byte{0xab}, 32)
	in := "# a comment\n" +
		"\n" +
		"http://m.example/a.rpm /tmp/a.rpm\n" +
		"   \t  \n" +
		"  # indented comment\n" +
		"\thttp://m.example/b.rpm\t/tmp/b.rpm   sha256:" + sum + "  \r\n" +
		"http://m.example/c.rpm c.rpm sha256:" + strings.ToUpper(sum)
	items, err := ParseBatch(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{URL: "http://m.example/a.rpm", Output: "/tmp/a.rpm"},
		{URL: "http://m.example/b.rpm", Output: "/tmp/b.rpm", SHA256: sumBytes},
		{URL: "http://m.example/c.rpm", Output: "c.rpm", SHA256: sumBytes},
	}
	if len(items) != len(want) {
		t.Fatalf("got %d items %+v, want %d", len(items), items, len(want))
	}
	for i := range want {
		g, w := items[i], want[i]
		if g.URL != w.URL || g.Output != w.Output || !bytes.Equal(g.SHA256, w.SHA256) || (g.SHA256 == nil) != (w.SHA256 == nil) {
			t.Errorf("item %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestParseBatchErrors(t *testing.T) {
	sum := strings.Repeat("0", 64)
	tests := []struct {
		in  string
		msg string
	}{
		{"", "empty"},
		{"# only comments\n\n", "empty"},
		{"http://x/a\n", "line 1"},
		{"# c\n\nhttp://x/a out\nhttp://x/b\n", "line 4"},
		{"http://x/a out sha256:" + sum + " extra\n", "line 1"},
		{"\n\nhttp://x/a out md5:" + sum + "\n", "line 3"},
		{"http://x/a out sha256:" + sum[:62] + "\n", "not 64 hex"},
		{"http://x/a out sha256:" + sum + "00\n", "not 64 hex"},
		{"http://x/a out sha256:" + sum[:63] + "g\n", "not 64 hex"},
		{"http://x/a out sha256:\n", "not 64 hex"},
		{"http://x/a out " + sum + "\n", "sha256:HEX"},
		{"http://x/a " + strings.Repeat("x", 2<<20) + "\n", "reading batch"},
	}
	for _, tt := range tests {
		items, err := ParseBatch(strings.NewReader(tt.in))
		if err == nil {
			t.Errorf("ParseBatch(%.60q) = %+v, nil; want an error", tt.in, items)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseBatch(%.60q) error %q does not mention %q", tt.in, err, tt.msg)
		}
	}
}

func TestParseSHA256(t *testing.T) {
	hex := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	b, err := ParseSHA256("sha256:" + hex)
	if err != nil || len(b) != 32 || b[0] != 0xe3 || b[31] != 0x55 {
		t.Errorf("ParseSHA256 = %x, %v", b, err)
	}
	for _, s := range []string{hex, "SHA256:" + hex, "sha256:", "sha256:" + hex[:63], "sha256: " + hex, "sha1:" + hex[:40]} {
		if b, err := ParseSHA256(s); err == nil {
			t.Errorf("ParseSHA256(%q) = %x, nil; want an error", s, b)
		}
	}
}
