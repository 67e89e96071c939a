// Command packaging builds the pkgtorrent distribution packages with nfpm
// (github.com/goreleaser/nfpm, as a library): deb, rpm and Arch packages of
// pkgtorrent (pkgtorrent-get and its agent) and pkgtorrent-service, rpm
// packages of the yum and dnf plugins, and an Arch package of the pacman
// adapter. Run from the repository root:
//
//	go run ./packaging [--out DIR] [--version V] [--arch GOARCH]
//
// A package whose source files are not in the tree (the adapters are
// written separately) is skipped with a message naming the missing files.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

func main() {
	fs := pflag.NewFlagSet("packaging", pflag.ContinueOnError)
	var o Options
	fs.StringVar(&o.Out, "out", "dist", "directory to write the packages to")
	fs.StringVar(&o.Version, "version", "0.1.0", "package version")
	fs.StringVar(&o.Release, "release", "1", "package release")
	fs.StringVar(&o.Arch, "arch", "amd64", "GOARCH to build the binaries for")
	fs.StringVar(&o.DNFPluginDir, "dnf-plugin-dir", DefaultDNFPluginDir, "directory of dnf plugins on the target (python3 site-packages/dnf-plugins)")
	fs.StringVar(&o.Root, "root", ".", "repository root")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == pflag.ErrHelp {
			return
		}
		os.Exit(2)
	}
	o.Log = func(s string) { fmt.Fprintln(os.Stderr, "packaging:", s) }
	built, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	for _, b := range built {
		fmt.Println(b.Path)
	}
}
