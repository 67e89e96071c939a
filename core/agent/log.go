package agent

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pkgtorrent/pkgtorrent/core/control"
)

// BestEffort wraps the agent's log destination so that failed writes (a
// full disk under the state directory) are dropped instead of reported:
// the engine's logging panics on a write error, and a log line is never
// worth the agent.
func BestEffort(w io.Writer) io.Writer { return bestEffort{w} }

type bestEffort struct{ w io.Writer }

func (b bestEffort) Write(p []byte) (int, error) {
	b.w.Write(p)
	return len(p), nil
}

// OpenLog opens (creating it, mode 0600) the agent's log in stateDir for
// appending and makes it the process's standard output and error, so that
// whatever the process prints, a panic included, lands there. It is called
// by the agent process itself, as the agent user: the user who starts the
// agent (root) never opens a file in the agent's directory.
func OpenLog(stateDir string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	p := filepath.Join(stateDir, control.LogName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening agent log: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("agent log %s is not a regular file", p)
	}
	f.Chmod(0o600)
	for _, fd := range []int{1, 2} {
		if err := syscall.Dup3(int(f.Fd()), fd, 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("redirecting output to agent log: %w", err)
		}
	}
	return f, nil
}
