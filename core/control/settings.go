package control

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/pflag"
)

// Settings are an agent's settings: the one value the command line, the
// configuration file and the agent share. pkgtorrent-get passes them to the
// agent it starts as Args, and its agent subcommand parses them back.
type Settings struct {
	// StateDir holds the socket, the lock, the log and the store.
	StateDir string
	// SeedTime is how long the agent seeds after its last fetch ends.
	SeedTime time.Duration
	// PeerGrace is how long peers may deliver nothing before the webseeds join.
	PeerGrace time.Duration
	// WebseedIdlePieces lets the webseeds also fetch pieces connected peers
	// have but are not sending (by default they leave every piece a peer
	// has to the peers): a fetch ends sooner when the peers are slower than
	// the mirror, and the mirror sends more.
	WebseedIdlePieces bool
	// WebseedCatchUp lets the webseeds of a fetch also fetch pieces
	// connected peers have but are not sending once the fetch, at its
	// rate, would end later than the webseeds alone would have delivered
	// it (as plain HTTP from the mirror): a few hosts with uploads slower
	// than the mirror end no later than plain HTTP, the many hosts of a
	// burst, whose mirror is slow to each, still leave the peers' pieces to
	// the peers.
	WebseedCatchUp bool
	// CrossBatch lets the agent serve the batches of other hosts that share
	// files with what it holds, once its service vouches for them (see
	// package agent); off, every batch is its own swarm.
	CrossBatch bool
	// LocalDiscovery turns on BEP 14 local peer discovery: the agents of
	// one network find each other by multicast, without the tracker.
	LocalDiscovery bool
	// PeerHost is the address peers connect to ("" for all interfaces).
	PeerHost string
	// PeerPort is the BitTorrent listen port (0: any free port).
	PeerPort int
	// UploadRateLimit and DownloadRateLimit cap peer traffic in bytes/s (0: none).
	UploadRateLimit   int64
	DownloadRateLimit int64
	// MaxDisk caps the bytes of data the agent keeps (0: no cap). When over
	// it, data no torrent uses goes first, then the torrents seeded longest
	// ago are dropped and their data deleted; data of running fetches stays.
	MaxDisk int64
	// MaxCPUs is how many CPUs the agent, and each pkgtorrent-get, runs
	// its code on at once (LimitCPUs; 0: Go's default, every CPU). One by
	// default: one CPU hashes and moves the data faster than most links
	// bring it, while more spend CPU on handing work between threads, which
	// a busy host pays for (see docs/bench).
	MaxCPUs int
	// MetricsListen is a TCP address to serve Prometheus metrics on at
	// /metrics ("": none; the metrics are also available on the socket).
	MetricsListen string
	// LogLevel is the agent's log level (debug, info, warn, error).
	LogLevel string
	// Service and Mirrors are the service and mirror base URLs the agent
	// is configured with. A client other than root and the agent's own
	// user gets only torrents this service vouches for, with mirrors from
	// this list.
	Service string
	Mirrors []string
}

// Defaults are the settings of an agent nothing else was said about; the
// flags of pkgtorrent-get take their defaults from here.
var Defaults = Settings{
	SeedTime:       30 * time.Minute,
	PeerGrace:      time.Second,
	WebseedCatchUp: true,
	CrossBatch:     true,
	MaxCPUs:        1,
	LogLevel:       "info",
}

// Args returns the settings as pkgtorrent-get options (every one, so that
// the agent reads no configuration of its own).
func (s Settings) Args() []string {
	args := []string{
		"--state-dir", s.StateDir,
		"--seed-time", s.SeedTime.String(),
		"--peer-grace", s.PeerGrace.String(),
		fmt.Sprintf("--webseed-idle-pieces=%t", s.WebseedIdlePieces),
		fmt.Sprintf("--webseed-catch-up=%t", s.WebseedCatchUp),
		fmt.Sprintf("--cross-batch=%t", s.CrossBatch),
		fmt.Sprintf("--local-discovery=%t", s.LocalDiscovery),
		"--peer-host", s.PeerHost,
		"--peer-port", fmt.Sprint(s.PeerPort),
		"--upload-rate-limit", fmt.Sprint(s.UploadRateLimit),
		"--download-rate-limit", fmt.Sprint(s.DownloadRateLimit),
		"--max-disk", fmt.Sprint(s.MaxDisk),
		"--max-cpus", fmt.Sprint(s.MaxCPUs),
		"--metrics-listen", s.MetricsListen,
		"--log-level", s.LogLevel,
		"--service", s.Service,
	}
	for _, m := range s.Mirrors {
		args = append(args, "--mirror", m)
	}
	return args
}

// ParseArgs parses what Args returns (the agent's command line) back into
// Settings; an option Args never writes is an error, one it leaves out
// takes its value from Defaults.
func ParseArgs(args []string) (Settings, error) {
	d := Defaults
	var s Settings
	fs := pflag.NewFlagSet(AgentBinary, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&s.StateDir, "state-dir", d.StateDir, "")
	fs.DurationVar(&s.SeedTime, "seed-time", d.SeedTime, "")
	fs.DurationVar(&s.PeerGrace, "peer-grace", d.PeerGrace, "")
	fs.BoolVar(&s.WebseedIdlePieces, "webseed-idle-pieces", d.WebseedIdlePieces, "")
	fs.BoolVar(&s.WebseedCatchUp, "webseed-catch-up", d.WebseedCatchUp, "")
	fs.BoolVar(&s.CrossBatch, "cross-batch", d.CrossBatch, "")
	fs.BoolVar(&s.LocalDiscovery, "local-discovery", d.LocalDiscovery, "")
	fs.StringVar(&s.PeerHost, "peer-host", d.PeerHost, "")
	fs.IntVar(&s.PeerPort, "peer-port", d.PeerPort, "")
	fs.Int64Var(&s.UploadRateLimit, "upload-rate-limit", d.UploadRateLimit, "")
	fs.Int64Var(&s.DownloadRateLimit, "download-rate-limit", d.DownloadRateLimit, "")
	fs.Int64Var(&s.MaxDisk, "max-disk", d.MaxDisk, "")
	fs.IntVar(&s.MaxCPUs, "max-cpus", d.MaxCPUs, "")
	fs.StringVar(&s.MetricsListen, "metrics-listen", d.MetricsListen, "")
	fs.StringVar(&s.LogLevel, "log-level", d.LogLevel, "")
	fs.StringVar(&s.Service, "service", d.Service, "")
	// Repeated, never comma-split: a URL may hold a comma.
	fs.StringArrayVar(&s.Mirrors, "mirror", nil, "")
	if err := fs.Parse(args); err != nil {
		return Settings{}, err
	}
	if fs.NArg() > 0 {
		return Settings{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if s.StateDir == "" {
		return Settings{}, fmt.Errorf("no --state-dir")
	}
	return s, nil
}

// AgentBinary is the agent's program. pkgtorrent-get finds it with
// AgentPath: beside itself in a build directory, in AgentLibDir (relative
// to the directory of pkgtorrent-get) where the packages install it.
const (
	AgentBinary = "pkgtorrent-agent"
	AgentLibDir = "../lib/pkgtorrent"
)

// AgentPath returns the agent program that goes with the pkgtorrent-get at
// exe: the first of exe's directory and AgentLibDir beside it that holds
// an executable AgentBinary.
func AgentPath(exe string) (string, error) {
	dir := filepath.Dir(exe)
	tried := []string{filepath.Join(dir, AgentBinary), filepath.Clean(filepath.Join(dir, AgentLibDir, AgentBinary))}
	for _, p := range tried {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("no agent program: neither %s nor %s is an executable file", tried[0], tried[1])
}

// LimitCPUs makes this process run its Go code on at most n CPUs at once
// (GOMAXPROCS); 0 leaves Go's default (every CPU, or the GOMAXPROCS
// environment variable's number). The max-cpus setting of the agent and of
// pkgtorrent-get.
func LimitCPUs(n int) error {
	if n < 0 {
		return fmt.Errorf("max-cpus: %d is negative", n)
	}
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	return nil
}

// ProfileCPU starts a CPU profile of this process for pprof when the
// environment names a file prefix in PKGTORRENT_CPUPROFILE (for the
// benchmark; not a setting): the profile goes to prefix.<pid>, written by
// the stop function it returns (a no-op otherwise). A profile that cannot
// be written is said on w (the agent's log): an agent started by root runs
// as the agent user, which needs write access to prefix's directory.
func ProfileCPU(w io.Writer) (stop func()) {
	prefix := os.Getenv("PKGTORRENT_CPUPROFILE")
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", prefix, os.Getpid()))
	if err != nil {
		fmt.Fprintf(w, "PKGTORRENT_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(w, "PKGTORRENT_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
