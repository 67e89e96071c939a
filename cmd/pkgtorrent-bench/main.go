// Command pkgtorrent-bench runs pkgtorrent's swarm benchmark (package
// core/bench) and writes its figures as JSON and its chart as SVG.
//
//	go run ./cmd/pkgtorrent-bench [flags]
//
// Run it from the repository: it builds pkgtorrent-get, pkgtorrent-agent
// and pkgtorrent-service with "go build" unless --bin-dir names prebuilt
// ones.
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

	"github.com/pkgtorrent/pkgtorrent/core/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, pflag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "pkgtorrent-bench:", err)
		os.Exit(1)
	}
}

const mib = 1 << 20

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d := bench.DefaultConfig()
	fs := pflag.NewFlagSet("pkgtorrent-bench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", d.N, "hosts in the largest burst and in the staggered case")
	ns := fs.IntSlice("ns", nil, "burst sizes of the chart (default N/4, N/2, N)")
	files := fs.Int("files", d.Files, "files in the batch")
	size := fs.Float64("size-mib", float64(d.Bytes)/mib, "total size of the batch in MiB")
	origin := fs.Float64("origin-rate-mib", float64(d.OriginRate)/mib, "origin cap U during bursts, MiB/s")
	upload := fs.Float64("upload-rate-mib", float64(d.UploadRate)/mib, "each client's upload cap c during bursts, MiB/s (0: none)")
	window := fs.Duration("stagger-window", d.StaggerWindow, "window over which the staggered clients arrive")
	parallel := fs.Int("http-parallel", d.HTTPParallel, "files a plain HTTP client fetches at once")
	reps := fs.Int("reps", d.Reps, "repetitions of the single-client and service timings (median reported)")
	seed := fs.Int64("seed", d.Seed, "seed of the tree and the arrival times")
	work := fs.String("work-dir", "", "working directory, kept afterwards (default: a temporary one, removed)")
	bin := fs.String("bin-dir", "", "directory with prebuilt pkgtorrent-get, pkgtorrent-agent and pkgtorrent-service (default: go build)")
	env := fs.StringArray("engine-env", nil, "KEY=VALUE for the pkgtorrent-get processes and agents (repeatable)")
	jsonOut := fs.String("json", "bench.json", "where to write the figures")
	svgOut := fs.String("svg", "bench.svg", "where to write the chart")
	phases := fs.StringSlice("phases", bench.Phases, "phases to run")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := bench.Config{
		N: *n, Ns: *ns, Files: *files, Bytes: int64(*size * mib),
		OriginRate: int64(*origin * mib), UploadRate: int64(*upload * mib),
		StaggerWindow: *window, HTTPParallel: *parallel, Reps: *reps, Seed: *seed,
		WorkDir: *work, BinDir: *bin, EngineEnv: *env, Phases: *phases, Log: stderr,
	}
	if *quiet {
		cfg.Log = nil
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(*jsonOut); err != nil {
		return err
	}
	if err := rep.WriteSVG(*svgOut); err != nil {
		return err
	}
	return rep.Summary(stdout)
}
