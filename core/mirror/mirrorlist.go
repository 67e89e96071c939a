package mirror

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// ParseMirrorlist reads a pacman mirrorlist and returns the tree-root base
// URL of each "Server = URL" line, in order, without duplicates.
//
// A Server URL is a template: pacman replaces $repo and $arch in it. The
// tree root is the part of the URL before the first of them, and the rest
// of the template is the layout under that root, the same on every mirror
// and in the tree a pkgtorrent service serves: for the Arch layout
// "Server = http://m.example/archlinux/$repo/os/$arch" the root is
// "http://m.example/archlinux/" and the file core/os/x86_64/core.db of the
// service's tree is http://m.example/archlinux/core/os/x86_64/core.db.
// Everything after a '#' is a comment; other lines must be empty.
func ParseMirrorlist(r io.Reader) ([]string, error) {
	var bases []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(key) != "Server" {
			return nil, fmt.Errorf("mirrorlist line %d: want \"Server = URL\", got %q", n, line)
		}
		base, err := templateRoot(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("mirrorlist line %d: %w", n, err)
		}
		if !seen[base] {
			seen[base] = true
			bases = append(bases, base)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mirrorlist: %w", err)
	}
	return bases, nil
}

// ReadMirrorlist is ParseMirrorlist of the file at path.
func ReadMirrorlist(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bases, err := ParseMirrorlist(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return bases, nil
}

// templateRoot returns the part of a Server URL template before its first
// $repo or $arch, which must start a path element.
func templateRoot(tmpl string) (string, error) {
	i := -1
	for _, v := range []string{"$repo", "$arch"} {
		if j := strings.Index(tmpl, v); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	if i < 0 {
		return "", fmt.Errorf("server %q has neither $repo nor $arch: its tree root is unknown", tmpl)
	}
	base := tmpl[:i]
	if !strings.HasSuffix(base, "/") {
		return "", fmt.Errorf("server %q: $repo or $arch must start a path element", tmpl)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", tmpl, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server %q: want an http or https URL", tmpl)
	}
	return base, nil
}
