// Command pkgtorrent-service serves a package mirror tree and builds batch
// torrents for it; see package service for the HTTP API.
//
// Settings come from, lowest precedence first, the TOML config file
// (--config), PKGTORRENT_SERVICE_* environment variables, and flags; the
// keys are the flag names. On start it prints one line,
// "pkgtorrent-service listening on <URL>", then serves until SIGINT or
// SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/pkgtorrent/pkgtorrent/core/config"
	"github.com/pkgtorrent/pkgtorrent/core/mirror"
	"github.com/pkgtorrent/pkgtorrent/core/service"
)

const (
	envPrefix         = "PKGTORRENT_SERVICE_"
	defaultConfigPath = "/etc/pkgtorrent/pkgtorrent-service.conf"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, pflag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "pkgtorrent-service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("pkgtorrent-service", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", defaultConfigPath, "TOML config file (keys are the flag names); env "+envPrefix+"CONFIG")
	fs.String("root", "", "mirror tree to serve (required)")
	fs.String("listen", service.DefaultListen, "TCP address to listen on")
	fs.String("public-url", "", "base URL clients reach this service at (default: the listen address)")
	fs.Int64("origin-rate-limit", 0, "cap on file bytes sent per second, all clients together (0: unlimited)")
	fs.StringArray("mirror", nil, "extra mirror base URL written into torrents (repeatable)")
	fs.StringArray("mirrorlist", nil, "pacman mirrorlist whose Server lines become extra mirror base URLs, the URL up to $repo or $arch (repeatable)")
	fs.StringArray("tracker", nil, "external tracker announce URL, replacing the embedded tracker (repeatable)")
	fs.Int("max-files", service.DefaultMaxFiles, "most files in one batch")
	fs.Int64("max-body", service.DefaultMaxBodyBytes, "most bytes in a torrent request body")
	fs.Duration("tracker-interval", 0, "embedded tracker announce interval (default 60s)")
	fs.Duration("read-header-timeout", service.DefaultReadHeaderTimeout, "time a client has to send request headers")
	fs.Duration("read-timeout", service.DefaultReadTimeout, "time a client has to send a whole request")
	fs.Duration("write-timeout", service.DefaultWriteTimeout, "time a client has to accept each 64 KiB of a response before it is dropped")
	fs.Duration("idle-timeout", service.DefaultIdleTimeout, "time a kept-alive connection may wait for its next request")
	fs.Int("max-builds", 0, "most torrent builds hashing files at once (0: the number of CPUs the service may use)")
	fs.Int64("hash-cache-bytes", service.DefaultHashCacheBytes, "memory bound of the piece hash cache, in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	path, explicit := fs.Lookup("config").Value.String(), fs.Changed("config")
	if p, ok := os.LookupEnv(envPrefix + "CONFIG"); ok && !explicit {
		path, explicit = p, true
	}
	k, err := config.Load(fs, path, explicit, envPrefix)
	if err != nil {
		return err
	}
	mirrors := k.Strings("mirror")
	for _, p := range k.Strings("mirrorlist") {
		bases, err := mirror.ReadMirrorlist(p)
		if err != nil {
			return err
		}
		mirrors = append(mirrors, bases...)
	}
	svc, err := service.New(service.Config{
		Root:              k.String("root"),
		Listen:            k.String("listen"),
		PublicURL:         k.String("public-url"),
		OriginRateLimit:   k.Int64("origin-rate-limit"),
		Mirrors:           mirrors,
		Trackers:          k.Strings("tracker"),
		MaxFiles:          k.Int("max-files"),
		MaxBodyBytes:      k.Int64("max-body"),
		TrackerInterval:   k.Duration("tracker-interval"),
		ReadHeaderTimeout: k.Duration("read-header-timeout"),
		ReadTimeout:       k.Duration("read-timeout"),
		WriteTimeout:      k.Duration("write-timeout"),
		IdleTimeout:       k.Duration("idle-timeout"),
		MaxBuilds:         k.Int("max-builds"),
		HashCacheBytes:    k.Int64("hash-cache-bytes"),
	})
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.Listen(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "pkgtorrent-service listening on %s\n", svc.URL()); err != nil {
		return fmt.Errorf("writing to stdout: %w", err)
	}
	return svc.Serve(ctx)
}
