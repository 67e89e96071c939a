package main

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/arch" // registers "archlinux"
	_ "github.com/goreleaser/nfpm/v2/deb"  // registers "deb"
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers "rpm"
)

// DefaultDNFPluginDir is where dnf looks for plugins on EL 9 (python 3.9);
// other distributions need --dnf-plugin-dir.
const DefaultDNFPluginDir = "/usr/lib/python3.9/site-packages/dnf-plugins"

// Options configure Build.
type Options struct {
	Root         string // repository root
	Out          string // output directory
	Version      string
	Release      string
	Arch         string // GOARCH of the binaries
	DNFPluginDir string
	Log          func(string) // receives skip notices; nil discards
}

// Built is one package file written by Build.
type Built struct {
	Package string // package name
	Format  string // nfpm packager: deb, rpm, archlinux
	Path    string
}

// file is one file of a package: Src is relative to the repository root,
// or "build:NAME" for a file Build makes (binaries, compressed man pages).
type file struct {
	Src, Dst string
	Type     string // nfpm content type ("" for a plain file)
	Mode     os.FileMode
}

// pkg is one package, built in each of its formats.
type pkg struct {
	Name, Description string
	Formats           []string
	Arch              string // "" for the binaries' arch, "all" for none
	Depends           []string
	Files             []file
	Scripts           nfpm.Scripts // paths relative to the repository root
}

const unitDir = "/usr/lib/systemd/system"

// packages returns the package definitions.
func packages(o Options) []pkg {
	return []pkg{{
		Name:        "pkgtorrent",
		Description: "Fetch packages from peers over BitTorrent, with the mirror as webseed (pkgtorrent-get and its agent)",
		Formats:     []string{"deb", "rpm", "archlinux"},
		Files: []file{
			{Src: "build:pkgtorrent-get", Dst: "/usr/bin/pkgtorrent-get", Mode: 0o755},
			// Where pkgtorrent-get finds it (control.AgentPath).
			{Src: "build:pkgtorrent-agent", Dst: "/usr/lib/pkgtorrent/pkgtorrent-agent", Mode: 0o755},
			{Src: "packaging/systemd/pkgtorrent-agent.service", Dst: unitDir + "/pkgtorrent-agent.service", Mode: 0o644},
			{Src: "packaging/etc/sysusers-pkgtorrent.conf", Dst: "/usr/lib/sysusers.d/pkgtorrent.conf", Mode: 0o644},
			{Src: "packaging/etc/pkgtorrent.conf", Dst: "/etc/pkgtorrent/pkgtorrent.conf", Type: files.TypeConfigNoReplace, Mode: 0o644},
			{Src: "build:pkgtorrent-get.1.gz", Dst: "/usr/share/man/man1/pkgtorrent-get.1.gz", Mode: 0o644},
			{Src: "build:pkgtorrent.conf.5.gz", Dst: "/usr/share/man/man5/pkgtorrent.conf.5.gz", Mode: 0o644},
			{Src: "README.md", Dst: "/usr/share/doc/pkgtorrent/README.md", Mode: 0o644},
		},
		Scripts: nfpm.Scripts{
			PostInstall: "packaging/scripts/pkgtorrent-postinstall.sh",
			PreRemove:   "packaging/scripts/pkgtorrent-preremove.sh",
			PostRemove:  "packaging/scripts/pkgtorrent-postremove.sh",
		},
	}, {
		Name:        "pkgtorrent-service",
		Description: "Serve a package mirror with batch torrents, webseed and tracker for pkgtorrent clients",
		Formats:     []string{"deb", "rpm", "archlinux"},
		Files: []file{
			{Src: "build:pkgtorrent-service", Dst: "/usr/bin/pkgtorrent-service", Mode: 0o755},
			{Src: "packaging/systemd/pkgtorrent-service.service", Dst: unitDir + "/pkgtorrent-service.service", Mode: 0o644},
			{Src: "packaging/etc/pkgtorrent-service.conf", Dst: "/etc/pkgtorrent/pkgtorrent-service.conf", Type: files.TypeConfigNoReplace, Mode: 0o644},
			{Src: "build:pkgtorrent-service.8.gz", Dst: "/usr/share/man/man8/pkgtorrent-service.8.gz", Mode: 0o644},
			{Src: "build:pkgtorrent-service.conf.5.gz", Dst: "/usr/share/man/man5/pkgtorrent-service.conf.5.gz", Mode: 0o644},
		},
		Scripts: nfpm.Scripts{
			PostInstall: "packaging/scripts/pkgtorrent-service-postinstall.sh",
			PreRemove:   "packaging/scripts/pkgtorrent-service-preremove.sh",
		},
	}, {
		Name:        "yum-plugin-pkgtorrent",
		Description: "yum plugin: download packages with pkgtorrent",
		Formats:     []string{"rpm"},
		Arch:        "all",
		Depends:     []string{"pkgtorrent", "yum"},
		Files: []file{
			{Src: "adapters/yum/pkgtorrent.py", Dst: "/usr/lib/yum-plugins/pkgtorrent.py", Mode: 0o644},
			// The plugin imports it from its own directory.
			{Src: "adapters/common/pkgtorrent_batch.py", Dst: "/usr/lib/yum-plugins/pkgtorrent_batch.py", Mode: 0o644},
			{Src: "adapters/yum/pkgtorrent.conf", Dst: "/etc/yum/pluginconf.d/pkgtorrent.conf", Type: files.TypeConfigNoReplace, Mode: 0o644},
		},
	}, {
		Name:        "python3-dnf-plugin-pkgtorrent",
		Description: "dnf plugin: download packages with pkgtorrent",
		Formats:     []string{"rpm"},
		Arch:        "all",
		Depends:     []string{"pkgtorrent", "python3-dnf"},
		Files: []file{
			{Src: "adapters/dnf/pkgtorrent.py", Dst: o.DNFPluginDir + "/pkgtorrent.py", Mode: 0o644},
			// The plugin imports it from its own directory.
			{Src: "adapters/common/pkgtorrent_batch.py", Dst: o.DNFPluginDir + "/pkgtorrent_batch.py", Mode: 0o644},
			{Src: "adapters/dnf/pkgtorrent.conf", Dst: "/etc/dnf/plugins/pkgtorrent.conf", Type: files.TypeConfigNoReplace, Mode: 0o644},
		},
	}, {
		Name:        "pkgtorrent-pacman",
		Description: "pacman XferCommand adapter: download packages with pkgtorrent",
		Formats:     []string{"archlinux"},
		Arch:        "all",
		Depends:     []string{"pkgtorrent", "pacman"},
		Files: []file{
			{Src: "adapters/pacman/pkgtorrent-pacman", Dst: "/usr/bin/pkgtorrent-pacman", Mode: 0o755},
		},
	}}
}

// Build builds every package whose sources are present into o.Out and
// returns the files written, in definition order.
func Build(o Options) ([]Built, error) {
	if o.Log == nil {
		o.Log = func(string) {}
	}
	if o.DNFPluginDir == "" {
		o.DNFPluginDir = DefaultDNFPluginDir
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	work, err := os.MkdirTemp("", "pkgtorrent-packaging-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := buildArtifacts(root, work, o.Arch); err != nil {
		return nil, err
	}
	var out []Built
	for _, p := range packages(o) {
		if missing := missingSources(root, p); len(missing) > 0 {
			o.Log(fmt.Sprintf("skipping package %s: source files not in this tree: %v", p.Name, missing))
			continue
		}
		for _, format := range p.Formats {
			path, err := buildOne(o, root, work, p, format)
			if err != nil {
				return nil, fmt.Errorf("package %s (%s): %w", p.Name, format, err)
			}
			out = append(out, Built{Package: p.Name, Format: format, Path: path})
		}
	}
	return out, nil
}

func missingSources(root string, p pkg) []string {
	var missing []string
	check := func(src string) {
		if src == "" || len(src) > 6 && src[:6] == "build:" {
			return
		}
		if _, err := os.Stat(filepath.Join(root, src)); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, src)
		}
	}
	for _, f := range p.Files {
		check(f.Src)
	}
	for _, s := range []string{p.Scripts.PostInstall, p.Scripts.PreRemove, p.Scripts.PostRemove, p.Scripts.PreInstall} {
		check(s)
	}
	return missing
}

// buildArtifacts builds the binaries (static, trimmed) and the compressed
// man pages into work.
func buildArtifacts(root, work, goarch string) error {
	for _, cmd := range []string{"pkgtorrent-get", "pkgtorrent-agent", "pkgtorrent-service"} {
		c := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(work, cmd), "./cmd/"+cmd)
		c.Dir = root
		c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		if b, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", cmd, err, b)
		}
	}
	for _, page := range []string{"pkgtorrent-get.1", "pkgtorrent.conf.5", "pkgtorrent-service.8", "pkgtorrent-service.conf.5"} {
		if err := gzipFile(filepath.Join(root, "man", page), filepath.Join(work, page+".gz")); err != nil {
			return err
		}
	}
	return nil
}

// gzipFile compresses src to dst without a name or time in the header, so
// the same page gives the same bytes.
func gzipFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := zw.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func buildOne(o Options, root, work string, p pkg, format string) (string, error) {
	arch := p.Arch
	if arch == "" {
		arch = o.Arch
	}
	info := &nfpm.Info{
		Name:        p.Name,
		Arch:        arch,
		Platform:    "linux",
		Version:     o.Version,
		Release:     o.Release,
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "pkgtorrent maintainers <pkgtorrent@localhost>",
		Description: p.Description,
		Vendor:      "pkgtorrent",
		Homepage:    "https://pkgtorrent.invalid/",
		License:     "MIT",
		// Reproducible: file times from SOURCE_DATE_EPOCH or a fixed date.
		MTime: time.Unix(1700000000, 0).UTC(),
	}
	info.Depends = p.Depends
	info.RPM.Group = "System Environment/Base"
	info.RPM.Summary = p.Description
	info.ArchLinux.Packager = info.Maintainer
	scriptPath := func(s string) string {
		if s == "" {
			return ""
		}
		return filepath.Join(root, s)
	}
	info.Scripts = nfpm.Scripts{
		PreInstall:  scriptPath(p.Scripts.PreInstall),
		PostInstall: scriptPath(p.Scripts.PostInstall),
		PreRemove:   scriptPath(p.Scripts.PreRemove),
		PostRemove:  scriptPath(p.Scripts.PostRemove),
	}
	for _, f := range p.Files {
		src := filepath.Join(root, f.Src)
		if len(f.Src) > 6 && f.Src[:6] == "build:" {
			src = filepath.Join(work, f.Src[6:])
		}
		info.Contents = append(info.Contents, &files.Content{
			Source: src, Destination: f.Dst, Type: f.Type,
			FileInfo: &files.ContentFileInfo{Mode: f.Mode, Owner: "root", Group: "root"},
		})
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	packager, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	path := filepath.Join(o.Out, packager.ConventionalFileName(info))
	w, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, w); err != nil {
		w.Close()
		os.Remove(path)
		return "", err
	}
	if err := w.Close(); err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}
