package mirror

import (
	"strings"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/core/batch"
)

func TestRelPath(t *testing.T) {
	bases := []string{
		"http://mirror.example/fedora/",
		"http://mirror.example/fedora/updates/40/",
		"https://secure.example:8443/repo",
		"http://other.example:80/a/",
		"https://tls.example/r/",
		"http://Svc.Example/",
	}
	tests := []struct {
		url  string
		want string
	}{
		{"http://mirror.example/fedora/releases/40/x.rpm", "releases/40/x.rpm"},
		// Longest base wins, regardless of order.
		{"http://mirror.example/fedora/updates/40/Packages/a.rpm", "Packages/a.rpm"},
		{"http://mirror.example/fedora/updates/41/b.rpm", "updates/41/b.rpm"},
		// Host case-insensitive, scheme case-insensitive.
		{"http://MIRROR.Example/fedora/x", "x"},
		{"HTTP://mirror.example/fedora/x", "x"},
		{"http://svc.example/x/y", "x/y"},
		// Default ports are the same as none, either way round.
		{"http://mirror.example:80/fedora/x", "x"},
		{"http://other.example/a/y", "y"},
		{"https://tls.example:443/r/z", "z"},
		// A base without a trailing slash is a directory.
		{"https://secure.example:8443/repo/p", "p"},
		// Unescaping.
		{"http://mirror.example/fedora/a%20b/c%2Bd.rpm", "a b/c+d.rpm"},
		{"http://mirror.example/fedora/c+d.rpm", "c+d.rpm"},
		{"http://mirror.example/fedora/%7Euser", "~user"},
	}
	for _, tt := range tests {
		got, err := RelPath(tt.url, bases)
		if err != nil || got != tt.want {
			t.Errorf("RelPath(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
}

func TestRelPathErrors(t *testing.T) {
	bases := []string{
		"http://mirror.example/fedora/",
		"https://secure.example:8443/repo/",
	}
	tests := []struct {
		url string
		msg string // part of the error message
	}{
		{"http://mirror.example/fedora/x?y=1", "query"},
		{"http://mirror.example/fedora/x#frag", "fragment"},
		{"ftp://mirror.example/fedora/x", "scheme"},
		{"file:///fedora/x", "scheme"},
		{"mirror.example/fedora/x", "scheme"},
		{"https://mirror.example/fedora/x", "http"}, // scheme differs from the base
		{"http://mirror.example:8080/fedora/x", "not under"},
		{"https://secure.example/repo/x", "not under"}, // default port is not 8443
		{"http://mirror.example/fedorax/y", "not under"},
		{"http://mirror.example/fedora", "not under"},
		{"http://elsewhere.example/fedora/x", "http://elsewhere.example/fedora/x"},
		{"http://mirror.example/fedora/", "empty"},
		{"http://mirror.example/fedora/a//b", "empty"},
		{"http://mirror.example/fedora/%2e%2e/etc/passwd", ".."},
		{"http://mirror.example/fedora/a/%2E%2E/%2e%2e/x", ".."},
		{"http://mirror.example/fedora/a/%2e/b", "."},
		{"http://mirror.example/fedora/a%00b", ""},
		{"http://mirror.example/fedora/a%0Ab", "newline"},
		{"http://mirror.example/fedora/a%5Cb", "backslash"},
		{"http://mirror.example/fedora/.pad/3", "reserved"},
		{"http://mirror.example/fedora/.pkgtorrent/v1/x", "reserved"},
		{"http://mirror.example/fedora/x/", "empty"},
		{"http://[::1", ""},
	}
	for _, tt := range tests {
		got, err := RelPath(tt.url, bases)
		if err == nil {
			t.Errorf("RelPath(%q) = %q, nil; want an error", tt.url, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("RelPath(%q) error %q does not mention %q", tt.url, err, tt.msg)
		}
	}
	// The error for a URL under no base names the URL.
	const u = "http://nowhere.example/pkg.rpm"
	if _, err := RelPath(u, bases); err == nil || !strings.Contains(err.Error(), u) {
		t.Errorf("RelPath(%q) error %v does not name the URL", u, err)
	}
	if _, err := RelPath(u, nil); err == nil {
		t.Errorf("RelPath(%q, nil) succeeded", u)
	}
}

func TestFileURLRoundTrip(t *testing.T) {
	bases := []string{
		"http://mirror.example/fedora/",
		"http://mirror.example/fedora", // no trailing slash
		"https://m.example:8443/my%20repo/",
		"http://m.example/",
	}
	rels := []string{
		"x.rpm",
		"Packages/a b/c d.rpm",
		"Packages/g/gcc-c++-14.1.rpm",
		"a+b/c=d",
		"q?x/#y",
		"semi;colon/ü.rpm",
		"~x/..y",
	}
	for _, base := range bases {
		for _, rel := range rels {
			u, err := FileURL(base, rel)
			if err != nil {
				t.Errorf("FileURL(%q, %q): %v", base, rel, err)
				continue
			}
			got, err := RelPath(u, []string{base})
			if err != nil || got != rel {
				t.Errorf("RelPath(FileURL(%q, %q) = %q) = %q, %v", base, rel, u, got, err)
			}
		}
	}
	for _, rel := range []string{"", "../x", ".pad/1", "a//b", "/x"} {
		if u, err := FileURL("http://m.example/", rel); err == nil {
			t.Errorf("FileURL(%q) = %q, nil; want an error", rel, u)
		}
	}
}

// FileURL must escape '%' in a path: a repository file may be named
// "c%20d" (literally), and its URL must not name the file "c d".
func TestFileURLPercent(t *testing.T) {
	const base = "http://m.example/repo/"
	for _, rel := range []string{"c%20d", "a+b/c%20d", "a%zz", "100%", "x%2Fy"} {
		u, err := FileURL(base, rel)
		if err != nil {
			t.Errorf("FileURL(%q, %q): %v", base, rel, err)
			continue
		}
		got, err := RelPath(u, []string{base})
		if err != nil || got != rel {
			t.Errorf("RelPath(FileURL(%q, %q) = %q) = %q, %v; want %q", base, rel, u, got, err, rel)
		}
	}
}

func TestFileURLForm(t *testing.T) {
	tests := []struct{ base, rel, want string }{
		{"http://m.example/fedora/", "a/b.rpm", "http://m.example/fedora/a/b.rpm"},
		{"http://m.example/fedora", "a/b.rpm", "http://m.example/fedora/a/b.rpm"},
		{"http://m.example/", "a b", "http://m.example/a%20b"},
		{"http://m.example", "x", "http://m.example/x"},
	}
	for _, tt := range tests {
		got, err := FileURL(tt.base, tt.rel)
		if err != nil || got != tt.want {
			t.Errorf("FileURL(%q, %q) = %q, %v; want %q", tt.base, tt.rel, got, err, tt.want)
		}
	}
}

func FuzzRelPath(f *testing.F) {
	f.Add("http://mirror.example/fedora/a/b.rpm", "http://mirror.example/fedora/")
	f.Add("http://mirror.example/fedora/%2e%2e/x", "http://mirror.example/fedora/")
	f.Add("http://MIRROR.example:80/fedora/a%20b", "http://mirror.example/fedora")
	f.Add("https://x/?q#f", "https://x/")
	f.Add("http://x/.pad/1", "http://x/")
	f.Fuzz(func(t *testing.T, u, base string) {
		rel, err := RelPath(u, []string{base, "http://fixed.example/root/"})
		if err != nil {
			return
		}
		if _, err := batch.CleanPath(rel); err != nil {
			t.Fatalf("RelPath(%q, %q) = %q, not a clean path: %v", u, base, rel, err)
		}
	})
}
