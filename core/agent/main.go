package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/pkgtorrent/pkgtorrent/core/control"
)

// Main is the agent process (pkgtorrent-agent): it refuses root, runs its
// code on at most s.MaxCPUs CPUs at once, sends its output to the agent's
// log (unless systemd collects it), and runs the agent with s until it
// stops. stderr is where errors go before the log is open.
func Main(ctx context.Context, s control.Settings, stderr io.Writer) error {
	if os.Geteuid() == 0 {
		return ErrRoot
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.LogLevel)); err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	if err := control.LimitCPUs(s.MaxCPUs); err != nil {
		return err
	}
	if os.Getenv("JOURNAL_STREAM") == "" {
		logf, err := OpenLog(s.StateDir)
		if err != nil {
			return err
		}
		defer logf.Close()
		stderr = logf
	}
	defer control.ProfileCPU(stderr)()
	err := Run(ctx, Config{
		Settings: s,
		Logger:   slog.New(slog.NewTextHandler(BestEffort(stderr), &slog.HandlerOptions{Level: level})),
	})
	if err != nil && err != ErrRunning {
		fmt.Fprintf(stderr, "%s: %v\n", control.AgentBinary, err)
	}
	return err
}
