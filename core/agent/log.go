package agent

import "io"

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
