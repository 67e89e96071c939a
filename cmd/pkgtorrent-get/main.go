// Command pkgtorrent-get fetches package files through the host's
// pkgtorrent agent: from peers first, from the mirror as webseed.
//
//	pkgtorrent-get [flags] URL OUTPUT
//	pkgtorrent-get [flags] --batch FILE|-
//	pkgtorrent-get [flags] status|metrics|stop
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/pkgtorrent/pkgtorrent/core/config"
	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/core/fetch"
	"github.com/pkgtorrent/pkgtorrent/core/progress"
)

const defaultConfig = "/etc/pkgtorrent/pkgtorrent.conf"

func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/pkgtorrent"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "pkgtorrent")
	}
	// No predictable shared path (/tmp) as a fallback: another user could
	// create it first. --state-dir must then be given.
	return ""
}

func flags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("pkgtorrent-get", pflag.ContinueOnError)
	d := control.Defaults
	fs.String("config", defaultConfig, "config file")
	fs.String("service", "", "pkgtorrent service URL (its file root)")
	fs.StringSlice("mirror", nil, "further mirror base URL of the same tree (repeatable)")
	fs.String("batch", "", "read \"URL OUTPUT [sha256:HEX]\" lines from FILE (- for stdin)")
	fs.String("state-dir", defaultStateDir(), "agent state directory (socket, seeded data)")
	fs.Duration("seed-time", d.SeedTime, "how long the agent seeds after its last fetch")
	fs.Duration("connect-timeout", fetch.DefaultConnectTimeout, "give up when the service or agent cannot be reached in this time")
	fs.Duration("stall-timeout", fetch.DefaultStallTimeout, "give up when the download makes no progress for this long")
	fs.Duration("peer-grace", d.PeerGrace, "how long peers may deliver nothing before the mirror joins")
	fs.Bool("webseed-idle-pieces", d.WebseedIdlePieces, "let the mirror also send pieces peers have but are not sending (bursts end sooner, the mirror sends more)")
	fs.Bool("webseed-catch-up", d.WebseedCatchUp, "let the mirror also send pieces peers have but are not sending once a fetch would end later than by the mirror alone")
	fs.Bool("cross-batch", d.CrossBatch, "serve other hosts' batches that share files with what the agent holds, as the service vouches for them (off: one swarm per batch)")
	fs.Bool("local-discovery", d.LocalDiscovery, "find the agents of the local network by multicast (BEP 14), without the tracker")
	fs.String("peer-host", d.PeerHost, "address the agent listens on for peers (empty: all)")
	fs.Int("peer-port", d.PeerPort, "port the agent listens on for peers (0: any)")
	fs.Int64("upload-rate-limit", d.UploadRateLimit, "agent upload cap in bytes/s (0: none)")
	fs.Int64("download-rate-limit", d.DownloadRateLimit, "agent download cap from peers in bytes/s (0: none)")
	fs.Int64("max-disk", d.MaxDisk, "cap on the agent's seeded data in bytes; the data seeded longest ago goes first (0: none)")
	fs.Int("max-cpus", d.MaxCPUs, "CPUs the agent, and pkgtorrent-get itself, run their code on at once (0: every CPU)")
	fs.String("agent-user", control.DefaultAgentUser, "user the agent runs as when pkgtorrent-get runs as root")
	fs.Bool("direct", true, "when no peer has the batch, download its files straight from the mirror (as the package manager would) and give them to the agent to seed; off: the agent downloads every batch")
	fs.Bool("http-fallback", true, "when the torrent fetch fails, download the files over plain HTTP from their URLs (off for callers with their own downloader)")
	fs.String("metrics-listen", d.MetricsListen, "TCP address where the agent serves Prometheus metrics at /metrics (empty: off)")
	fs.StringSlice("http-only", fetch.DefaultHTTPOnly, "file name patterns always downloaded over plain HTTP from their URL, never through a torrent (repository databases, signatures)")
	fs.Int64("http-only-max-size", fetch.DefaultHTTPOnlyMaxSize, "largest file downloaded because it matches http-only, in bytes (-1: no cap)")
	fs.Bool("json", false, "print a JSON summary on stdout (status: JSON instead of text)")
	fs.Bool("quiet", false, "no progress output")
	fs.String("log-level", d.LogLevel, "agent log level (debug, info, warn, error)")
	return fs
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flags()
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		fmt.Fprintf(stderr, "pkgtorrent-get: %v\n", err)
		return 2
	}
	cfgPath, _ := fs.GetString("config")
	explicit := fs.Changed("config")
	if env := os.Getenv("PKGTORRENT_CONFIG"); env != "" && !explicit {
		cfgPath, explicit = env, true
	}
	k, err := config.Load(fs, cfgPath, explicit, "PKGTORRENT_")
	if err != nil {
		fmt.Fprintf(stderr, "pkgtorrent-get: %v\n", err)
		return 2
	}
	stateDir := k.String("state-dir")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pos := fs.Args()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "pkgtorrent-get: %v\n", err)
		if k.Bool("json") {
			json.NewEncoder(stdout).Encode(map[string]string{"error": err.Error()})
		}
		return 1
	}
	// Placing files is a read, a hash and a write per byte: one CPU keeps
	// up with the link, as in the agent (the same setting).
	if err := control.LimitCPUs(k.Int("max-cpus")); err != nil {
		return fail(err)
	}
	defer control.ProfileCPU(stderr)()
	if stateDir == "" {
		return fail(fmt.Errorf("no state directory: set state-dir (neither XDG_CACHE_HOME nor HOME is set)"))
	}
	switch {
	case len(pos) == 1 && pos[0] == "agent":
		if err := runAgent(agentSettings(k, stateDir)); err != nil {
			return fail(err)
		}
		return 0
	case len(pos) == 1 && pos[0] == "stop":
		if err := control.Stop(ctx, stateDir); err != nil {
			return fail(err)
		}
		return 0
	case len(pos) == 1 && pos[0] == "status":
		st, err := control.StatusOf(ctx, stateDir)
		if err != nil {
			return fail(err)
		}
		if k.Bool("json") {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(st)
		} else {
			progress.WriteStatus(stdout, *st)
		}
		return 0
	case len(pos) == 1 && pos[0] == "metrics":
		text, err := control.MetricsOf(ctx, stateDir)
		if err != nil {
			return fail(err)
		}
		io.WriteString(stdout, text)
		return 0
	}
	var items []fetch.Item
	switch b := k.String("batch"); {
	case b != "" && len(pos) == 0:
		r := stdin
		if b != "-" {
			f, err := os.Open(b)
			if err != nil {
				return fail(err)
			}
			defer f.Close()
			r = f
		}
		if items, err = fetch.ParseBatch(r); err != nil {
			return fail(err)
		}
	case b == "" && len(pos) == 2:
		items = []fetch.Item{{URL: pos[0], Output: pos[1]}}
	default:
		fmt.Fprintln(stderr, "usage: pkgtorrent-get [flags] URL OUTPUT | --batch FILE | status | metrics | stop")
		return 2
	}
	cfg := fetch.Config{
		Service:         k.String("service"),
		Mirrors:         k.Strings("mirror"),
		StateDir:        stateDir,
		ConnectTimeout:  k.Duration("connect-timeout"),
		StallTimeout:    k.Duration("stall-timeout"),
		HTTPFallback:    k.Bool("http-fallback"),
		NoDirect:        !k.Bool("direct"),
		HTTPOnly:        k.Strings("http-only"),
		HTTPOnlyMaxSize: k.Int64("http-only-max-size"),
		Warn:            func(s string) { fmt.Fprintf(stderr, "pkgtorrent-get: %s\n", s) },
		// The agent gets every setting as a flag: nothing left to read.
		Launch: control.Launch{
			Command: append([]string{control.AgentBinary}, agentSettings(k, stateDir).Args()...),
			Locate:  agentPath,
			User:    k.String("agent-user"),
		},
	}
	if !k.Bool("quiet") {
		f, _ := stderr.(*os.File)
		rep := progress.New(stderr, f != nil && progress.IsTerminal(f), 2*time.Second)
		defer rep.Finish()
		cfg.Progress = rep.Update
	}
	res, err := fetch.Run(ctx, cfg, items)
	if err != nil {
		return fail(err)
	}
	if k.Bool("json") {
		json.NewEncoder(stdout).Encode(res)
	}
	return 0
}

// settings is what agentSettings reads its values from.
type settings interface {
	String(string) string
	Strings(string) []string
	Duration(string) time.Duration
	Int(string) int
	Int64(string) int64
	Bool(string) bool
}

// agentSettings reads the agent's settings from the effective
// configuration.
func agentSettings(k settings, stateDir string) control.Settings {
	return control.Settings{
		StateDir:          stateDir,
		SeedTime:          k.Duration("seed-time"),
		PeerGrace:         k.Duration("peer-grace"),
		WebseedIdlePieces: k.Bool("webseed-idle-pieces"),
		WebseedCatchUp:    k.Bool("webseed-catch-up"),
		CrossBatch:        k.Bool("cross-batch"),
		LocalDiscovery:    k.Bool("local-discovery"),
		PeerHost:          k.String("peer-host"),
		PeerPort:          k.Int("peer-port"),
		UploadRateLimit:   k.Int64("upload-rate-limit"),
		DownloadRateLimit: k.Int64("download-rate-limit"),
		MaxDisk:           k.Int64("max-disk"),
		MaxCPUs:           k.Int("max-cpus"),
		MetricsListen:     k.String("metrics-listen"),
		LogLevel:          k.String("log-level"),
		Service:           k.String("service"),
		Mirrors:           k.Strings("mirror"),
	}
}

// agentPath returns the agent program that goes with this pkgtorrent-get.
func agentPath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return control.AgentPath(exe)
}

// runAgent replaces this process with the agent, run with s in the
// foreground (systemd's pkgtorrent-agent.service starts it this way, with
// the configuration's settings). It returns only when that fails.
func runAgent(s control.Settings) error {
	exe, err := agentPath()
	if err != nil {
		return err
	}
	argv := append([]string{exe}, s.Args()...)
	if err := syscall.Exec(exe, argv, os.Environ()); err != nil {
		return fmt.Errorf("running %s: %w", exe, err)
	}
	return nil
}
