package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	good := []string{
		"a",
		"a/b/c.rpm",
		"Packages/f/foo-1.0-1.fc40.x86_64.rpm",
		"with space/and+plus",
		"repodata/repomd.xml",
		"a/.pad/3",       // only a first component is reserved
		"x/.pkgtorrent",  // likewise
		".padding/x",     // not the reserved name itself
		".pkgtorrentx/y", // likewise
		"...",            // a name, not a traversal
		"a/...b",
		strings.Repeat("x", MaxPathLen),
	}
	for _, p := range good {
		got, err := CleanPath(p)
		if err != nil || got != p {
			t.Errorf("CleanPath(%.40q) = %q, %v; want it unchanged", p, got, err)
		}
	}
	bad := []string{
		"",
		"/abs",
		"/",
		"a/../b",
		"a/./b",
		"a//b",
		"..",
		".",
		"../a",
		"a/..",
		"a/",
		"x\x00y",
		"x\ny",
		"x\ry",
		"a\\b",
		".pkgtorrent/x",
		".pkgtorrent",
		".pad/3",
		".pad",
		strings.Repeat("x", MaxPathLen+1),
	}
	for _, p := range bad {
		if got, err := CleanPath(p); err == nil {
			t.Errorf("CleanPath(%.40q) = %q, nil; want an error", p, got)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{[]string{"a"}, []string{"a"}},
		{[]string{"b", "a"}, []string{"a", "b"}},
		{[]string{"b/c", "a", "b/c", "a", "a"}, []string{"a", "b/c"}},
		{[]string{"z", "a/b", "a", "A"}, []string{"A", "a", "a/b", "z"}},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		got, err := Canonical(in)
		if err != nil {
			t.Errorf("Canonical(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Canonical modified its argument: %q, was %q", in, tt.in)
		}
	}
	for _, in := range [][]string{nil, {}, {"a", ""}, {"a", "../b"}, {".pad/1"}} {
		if got, err := Canonical(in); err == nil {
			t.Errorf("Canonical(%q) = %q, nil; want an error", in, got)
		}
	}
}

func mustDigest(t *testing.T, paths []string) string {
	t.Helper()
	d, err := Digest(paths)
	if err != nil {
		t.Fatalf("Digest(%q): %v", paths, err)
	}
	return d
}

func TestDigestPinned(t *testing.T) {
	// The canonical form, computed independently: if this fails, the digest
	// changed and every client and service must agree on a new version.
	sum := sha256.Sum256([]byte("pkgtorrent-batch-v1\n" + "a\nb/c\n"))
	want := hex.EncodeToString(sum[:])
	// The same value as a literal (printf 'pkgtorrent-batch-v1\na\nb/c\n' | sha256sum).
	const lit = "e8cb67e5f6fa08e129afe653e1fcad269a6992da908a178412f657087d5c1867"
	if want != lit {
		t.Fatalf("test setup: sha256 = %s, want %s", want, lit)
	}
	for _, in := range [][]string{
		{"a", "b/c"},
		{"b/c", "a"},
		{"b/c", "a", "b/c", "a"},
	} {
		if got := mustDigest(t, in); got != want {
			t.Errorf("Digest(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDigestProperties(t *testing.T) {
	lists := [][]string{
		{"a"},
		{"b"},
		{"a", "b"},
		{"a/b"},
		{"ab"},
		{"a", "b", "c"},
		{"x/y.rpm", "x/z.rpm"},
	}
	seen := map[string][]string{}
	for _, l := range lists {
		d := mustDigest(t, l)
		if !ValidDigest(d) || len(d) != DigestLen || strings.ToLower(d) != d {
			t.Errorf("Digest(%q) = %q: not 64 lowercase hex digits", l, d)
		}
		if prev, ok := seen[d]; ok {
			t.Errorf("Digest(%q) == Digest(%q) = %s", l, prev, d)
		}
		seen[d] = l

		rev := slices.Clone(l)
		slices.Reverse(rev)
		if got := mustDigest(t, rev); got != d {
			t.Errorf("Digest(%q) = %s, but reversed %s", l, d, got)
		}
		dup := append(slices.Clone(l), l...)
		if got := mustDigest(t, dup); got != d {
			t.Errorf("Digest(%q) = %s, but with duplicates %s", l, d, got)
		}
	}
	// A newline-joined form must not be ambiguous with a path containing
	// the separator: such a path is rejected.
	if _, err := Digest([]string{"a\nb"}); err == nil {
		t.Error("Digest accepted a path with a newline")
	}
	if _, err := Digest(nil); err == nil {
		t.Error("Digest(nil) succeeded")
	}
}

func TestValidDigest(t *testing.T) {
	ok := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		s    string
		want bool
	}{
		{ok, true},
		{strings.Repeat("f", 64), true},
		{strings.ToUpper(ok), false},
		{ok[:63], false},
		{ok + "0", false},
		{"", false},
		{ok[:63] + "g", false},
		{ok[:63] + " ", false},
		{ok[:62] + "é", false}, // 64 bytes, 63 runes
	}
	for _, tt := range tests {
		if got := ValidDigest(tt.s); got != tt.want {
			t.Errorf("ValidDigest(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func FuzzDigest(f *testing.F) {
	f.Add("a,b/c")
	f.Add("b/c,a,a")
	f.Add("")
	f.Add(",")
	f.Add(".pad/1,x")
	f.Add("a/../b")
	f.Fuzz(func(t *testing.T, s string) {
		paths := strings.Split(s, ",")
		d, err := Digest(paths)
		if err != nil {
			return
		}
		if !ValidDigest(d) {
			t.Fatalf("Digest(%q) = %q, not a valid digest", paths, d)
		}
		for _, p := range paths {
			if _, err := CleanPath(p); err != nil {
				t.Fatalf("Digest(%q) succeeded with an invalid path %q: %v", paths, p, err)
			}
		}
		rev := slices.Clone(paths)
		slices.Reverse(rev)
		d2, err := Digest(rev)
		if err != nil || d2 != d {
			t.Fatalf("Digest(%q) = %s, reversed = %s, %v", paths, d, d2, err)
		}
	})
}
