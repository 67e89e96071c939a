// Package progress shows a fetch's progress (a bar on a terminal, plain
// lines otherwise) and the agent's status in human-readable form.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/pkgtorrent/pkgtorrent/core/control"
)

// Reporter receives progress and renders it.
type Reporter struct {
	w        io.Writer
	bar      *progressbar.ProgressBar
	every    time.Duration
	last     time.Time
	lastDone int64
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// New returns a reporter writing to w: a progress bar when bar is true, else
// one plain line at most every interval.
func New(w io.Writer, bar bool, every time.Duration) *Reporter {
	r := &Reporter{w: w, every: every}
	if bar {
		r.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetDescription("pkgtorrent"),
		)
	}
	return r
}

// Update renders p.
func (r *Reporter) Update(p control.Progress) {
	if r.bar != nil {
		if r.bar.GetMax64() != p.Total {
			r.bar.ChangeMax64(p.Total)
		}
		r.bar.Describe(describe(p))
		r.bar.Set64(p.Completed)
		return
	}
	now := time.Now()
	if now.Sub(r.last) < r.every && p.Completed != p.Total {
		return
	}
	if p.Completed == r.lastDone && !r.last.IsZero() {
		return
	}
	r.last, r.lastDone = now, p.Completed
	fmt.Fprintf(r.w, "pkgtorrent: %s of %s (%d%%), %s\n", human(p.Completed), human(p.Total), percent(p.Completed, p.Total), describe(p))
}

// Finish ends the bar.
func (r *Reporter) Finish() {
	if r.bar != nil {
		r.bar.Finish()
	}
}

func describe(p control.Progress) string {
	web := "webseed idle"
	if p.Webseed {
		web = "webseed " + human(p.FromWebseed)
	}
	return fmt.Sprintf("%d peers, peers %s, %s", p.Peers, human(p.FromPeers), web)
}

func percent(a, b int64) int64 {
	if b == 0 {
		return 100
	}
	return a * 100 / b
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// WriteStatus writes the agent's status s for a human.
func WriteStatus(w io.Writer, s control.Status) error {
	up := time.Duration(s.Uptime * float64(time.Second)).Round(time.Second)
	_, err := fmt.Fprintf(w, `agent:      pid %d, up %s, peer port %d
torrents:   %d (%d seeding), %d peers connected
downloaded: %s (%s from peers, %s from webseeds): %.1f%% peer-to-peer
uploaded:   %s
`, s.PID, up, s.PeerPort,
		s.Torrents, s.Seeding, s.Peers,
		human(s.Downloaded), human(s.FromPeers), human(s.FromWeb), 100*s.P2PShare,
		human(s.Uploaded))
	if err == nil && s.MetricsURL != "" {
		_, err = fmt.Fprintf(w, "metrics:    %s\n", s.MetricsURL)
	}
	return err
}
