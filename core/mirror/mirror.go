// Package mirror maps package URLs to repository-relative paths, and
// pacman mirrorlists to mirror base URLs.
//
// The rule, used by every client: a URL names the repository file whose path
// is what follows the longest matching base URL. A base URL is a mirror's
// repository root ("http://mirror.example/fedora/"); the service's own file
// URL is always one. A URL matches a base when scheme and host are equal
// (case-insensitively, default ports ignored) and its path starts with the
// base path; the remainder, unescaped, is the path. Query and fragment are
// not allowed.
package mirror

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/pkgtorrent/pkgtorrent/core/batch"
)

// RelPath returns the repository-relative path of rawURL under the longest
// of bases that contains it.
func RelPath(rawURL string, bases []string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("URL %q: scheme must be http or https", rawURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("URL %q: query or fragment not allowed", rawURL)
	}
	best := ""
	found := false
	for _, b := range bases {
		bu, err := url.Parse(b)
		if err != nil {
			return "", fmt.Errorf("base URL %q: %w", b, err)
		}
		if !strings.EqualFold(bu.Scheme, u.Scheme) || hostKey(bu) != hostKey(u) {
			continue
		}
		bp := bu.Path
		if !strings.HasSuffix(bp, "/") {
			bp += "/"
		}
		if strings.HasPrefix(u.Path, bp) && (!found || len(bp) > len(best)) {
			best, found = bp, true
		}
	}
	if !found {
		return "", fmt.Errorf("URL %q is not under any known mirror base (%s)", rawURL, strings.Join(bases, ", "))
	}
	rel, err := batch.CleanPath(strings.TrimPrefix(u.Path, best))
	if err != nil {
		return "", fmt.Errorf("URL %q: %w", rawURL, err)
	}
	return rel, nil
}

// FileURL returns the URL of a repository-relative path under base, the
// inverse of RelPath.
func FileURL(base, rel string) (string, error) {
	if _, err := batch.CleanPath(rel); err != nil {
		return "", err
	}
	bu, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("base URL %q: %w", base, err)
	}
	if !strings.HasSuffix(bu.Path, "/") {
		bu.Path += "/"
	}
	// Path is unescaped: String escapes it, a literal '%' included.
	bu.Path += rel
	bu.RawPath = ""
	return bu.String(), nil
}

func hostKey(u *url.URL) string {
	h, p := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		p = ""
	}
	return h + ":" + p
}
