// Package batch defines what a batch of repository files is: the rule for a
// valid repository-relative path, the canonical form of a list of them, and
// the batch digest that names a batch on both sides of the service API.
package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ReservedDirs are first path components that never name repository files:
// the service's API prefix and the BEP 47 padding directory.
var ReservedDirs = []string{".pkgtorrent", ".pad"}

// digestDomain separates batch digests from any other SHA-256 in the system;
// bump its version if the canonical form ever changes.
const digestDomain = "pkgtorrent-batch-v1\n"

// DigestLen is the length of a digest in hexadecimal characters.
const DigestLen = 64

// MaxPathLen bounds one repository-relative path in bytes.
const MaxPathLen = 4096

// CleanPath checks that p is a repository-relative path in canonical form
// and returns it unchanged: slash-separated, not absolute, no empty, "." or
// ".." components, no NUL, newline or backslash, not under a reserved directory.
func CleanPath(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("empty path")
	case len(p) > MaxPathLen:
		return "", fmt.Errorf("path longer than %d bytes", MaxPathLen)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("path %q is absolute", p)
	case strings.ContainsAny(p, "\x00\n\r\\"):
		return "", fmt.Errorf("path %q contains a NUL, newline or backslash", p)
	}
	for i, c := range strings.Split(p, "/") {
		switch c {
		case "":
			return "", fmt.Errorf("path %q has an empty component", p)
		case ".", "..":
			return "", fmt.Errorf("path %q has a %q component", p, c)
		}
		if i == 0 && slices.Contains(ReservedDirs, c) {
			return "", fmt.Errorf("path %q is under the reserved directory %q", p, c)
		}
	}
	return p, nil
}

// Canonical checks every path and returns them sorted, without duplicates:
// the one form in which a batch is digested and built.
func Canonical(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("empty batch")
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if _, err := CleanPath(p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Digest returns the batch digest: lowercase hex SHA-256 over a domain
// string and the canonical paths, each followed by a newline.
func Digest(paths []string) (string, error) {
	c, err := Canonical(paths)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(digestDomain))
	for _, p := range c {
		h.Write([]byte(p))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ValidDigest reports whether s has the form of a batch digest.
func ValidDigest(s string) bool {
	if len(s) != DigestLen {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
