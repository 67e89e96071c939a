package control

import (
	"fmt"
	"time"
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
	SeedTime:   30 * time.Minute,
	PeerGrace:  time.Second,
	CrossBatch: true,
	LogLevel:   "info",
}

// Args returns the settings as pkgtorrent-get options (every one, so that
// the agent reads no configuration of its own).
func (s Settings) Args() []string {
	args := []string{
		"--state-dir", s.StateDir,
		"--seed-time", s.SeedTime.String(),
		"--peer-grace", s.PeerGrace.String(),
		fmt.Sprintf("--webseed-idle-pieces=%t", s.WebseedIdlePieces),
		fmt.Sprintf("--cross-batch=%t", s.CrossBatch),
		fmt.Sprintf("--local-discovery=%t", s.LocalDiscovery),
		"--peer-host", s.PeerHost,
		"--peer-port", fmt.Sprint(s.PeerPort),
		"--upload-rate-limit", fmt.Sprint(s.UploadRateLimit),
		"--download-rate-limit", fmt.Sprint(s.DownloadRateLimit),
		"--max-disk", fmt.Sprint(s.MaxDisk),
		"--metrics-listen", s.MetricsListen,
		"--log-level", s.LogLevel,
		"--service", s.Service,
	}
	for _, m := range s.Mirrors {
		args = append(args, "--mirror", m)
	}
	return args
}
