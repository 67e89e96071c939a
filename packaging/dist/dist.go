// Package dist runs the packaging command for tests: they build the
// project's distribution packages as a user would (go run ./packaging, not
// under the race detector, which makes nfpm's compression several times
// slower), install them, and run the package managers from the installed
// files.
package dist

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Version and Release of the test packages.
const (
	Version = "1.2.3"
	Release = "1"
)

// Package is one file the packaging command wrote.
type Package struct {
	Name   string // package name
	Format string // deb, rpm, archlinux
	Path   string
}

// Packages are the files written, in the packaging command's order.
type Packages []Package

// Path returns the file of the package named "NAME FORMAT", or "".
func (ps Packages) Path(nameFormat string) string {
	for _, p := range ps {
		if p.Name+" "+p.Format == nameFormat {
			return p.Path
		}
	}
	return ""
}

// Build runs the packaging command of the repository at root into out and
// returns what it wrote and its notes (packages skipped). Each package
// named "NAME FORMAT" in want must be among them.
func Build(root, out string, want ...string) (Packages, []string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("go", "run", "./packaging", "--root", root, "--out", out,
		"--version", Version, "--release", Release, "--arch", runtime.GOARCH)
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("go run ./packaging: %v\n%s", err, stderr.String())
	}
	notes := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if notes[0] == "" {
		notes = nil
	}
	var pkgs Packages
	for _, path := range strings.Fields(string(b)) {
		base := filepath.Base(path)
		p := Package{Path: path}
		switch {
		case strings.HasSuffix(base, ".rpm"):
			p.Name, _, _ = strings.Cut(base, "-"+Version+"-")
			p.Format = "rpm"
		case strings.HasSuffix(base, ".deb"):
			p.Name, _, _ = strings.Cut(base, "_"+Version+"-")
			p.Format = "deb"
		case strings.Contains(base, ".pkg.tar."):
			p.Name, _, _ = strings.Cut(base, "-"+Version+"-")
			p.Format = "archlinux"
		default:
			return nil, nil, fmt.Errorf("packaging wrote %s, of no known format", path)
		}
		if _, err := os.Stat(path); err != nil {
			return nil, nil, err
		}
		pkgs = append(pkgs, p)
	}
	for _, w := range want {
		if pkgs.Path(w) == "" {
			return nil, nil, fmt.Errorf("packaging did not build %s (built %v)\n%s", w, pkgs, stderr.String())
		}
	}
	return pkgs, notes, nil
}
