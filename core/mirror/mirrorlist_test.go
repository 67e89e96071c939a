package mirror

import (
	"slices"
	"strings"
	"testing"
)

func TestParseMirrorlist(t *testing.T) {
	in := `## Arch Linux repository mirrorlist
# Server = http://commented.example/$repo/os/$arch

Server = http://m1.example/archlinux/$repo/os/$arch
Server=https://m2.example/$repo/os/$arch   # trailing comment
  Server = http://mirror.archlinuxarm.org/$arch/$repo
Server = http://m1.example/archlinux/$repo/os/$arch
`
	got, err := ParseMirrorlist(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://m1.example/archlinux/", "https://m2.example/", "http://mirror.archlinuxarm.org/"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The base maps a URL pacman builds from the template back to the
	// tree path.
	rel, err := RelPath("http://m1.example/archlinux/core/os/x86_64/core.db", got)
	if err != nil || rel != "core/os/x86_64/core.db" {
		t.Fatalf("RelPath = %q, %v", rel, err)
	}
}

func TestParseMirrorlistErrors(t *testing.T) {
	for in, want := range map[string]string{
		"Server = http://m.example/archlinux/\n":        "neither $repo nor $arch",
		"Include = /etc/pacman.d/mirrorlist\n":          "line 1",
		"\nServer = http://m.example/x$repo/os/$arch\n": "line 2",
		"Server = ftp://m.example/$repo/os/$arch\n":     "http or https",
		"Server = /$repo/os/$arch\n":                    "http or https",
	} {
		if _, err := ParseMirrorlist(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", in, err, want)
		}
	}
}
