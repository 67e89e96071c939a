// Command pkgtorrent-agent is the host's pkgtorrent agent: it fetches
// batches for pkgtorrent-get from peers and the mirror, and seeds them.
//
//	pkgtorrent-agent --state-dir DIR [settings...]
//
// pkgtorrent-get starts it when none runs (as the agent user when
// pkgtorrent-get runs as root) and passes every setting as an option
// (control.Settings.Args); `pkgtorrent-get agent` runs it in the
// foreground with the settings of pkgtorrent-get's configuration. It reads
// no configuration of its own. It is a program of its own so that
// pkgtorrent-get, which runs once per download and often as root, does not
// carry the BitTorrent engine.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pkgtorrent/pkgtorrent/core/agent"
	"github.com/pkgtorrent/pkgtorrent/core/control"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	s, err := control.ParseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", control.AgentBinary, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = agent.Main(ctx, s, stderr)
	if err == agent.ErrRunning {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", control.AgentBinary, err)
		return 1
	}
	return 0
}
