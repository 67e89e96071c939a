package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/control"
)

// directWorkers is how many files a direct fetch downloads at once: one
// connection leaves the network idle while a file is created and renamed,
// more contend for the destination directory.
const directWorkers = 2

// directFetch downloads the files of a batch no peer has straight from the
// mirror, as the package manager would, and gives each placed file to the
// agent, which seeds it (control: the "direct" reply). When the agent says
// peers have arrived ("swarm"), it starts no more files: the agent fetches
// the rest through the swarm.
type directFetch struct {
	cfg      Config
	conn     *control.Conn
	todo     []int // the items it downloads
	total    int64
	received atomic.Int64 // bytes received (progress)
	got      atomic.Int64 // bytes of the files placed
	sendMu   sync.Mutex
	// replies are the agent's replies, read from the start of the direct
	// fetch on (see recv).
	replies chan reply
	swarm   atomic.Bool
}

type reply struct {
	rep control.Reply
	err error
}

func newDirectFetch(cfg Config, conn *control.Conn) *directFetch {
	d := &directFetch{cfg: cfg, conn: conn, replies: make(chan reply, 16)}
	go func() {
		for {
			rep, err := conn.Recv(time.Time{})
			if err == nil && rep.Type == "swarm" {
				d.swarm.Store(true)
			}
			d.replies <- reply{rep, err}
			if err != nil {
				return
			}
		}
	}()
	return d
}

// recv is conn.Recv once the direct fetch has started.
func (d *directFetch) recv(deadline time.Time) (control.Reply, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case r := <-d.replies:
		return r.rep, r.err
	case <-t.C:
		return control.Reply{}, errors.New("reading from agent: timeout")
	}
}

// run downloads items[i] for every i in d.todo from its URL, each checked
// against the torrent's want for it as it arrives, places it and sends it to
// the agent; errors go to placeErrs, placed bytes to placed. It returns the
// items it did not place: not started because peers arrived, or failed
// (their placeErrs set).
func (d *directFetch) run(ctx context.Context, items []Item, rels []string, want map[string]expect, placeErrs []error, placed *atomic.Int64) (rest []int) {
	hc := httpClient(d.cfg)
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = directWorkers
	defer hc.CloseIdleConnections()
	jobs := make(chan int, len(d.todo))
	for _, i := range d.todo {
		jobs <- i
	}
	close(jobs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(directWorkers, len(d.todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if ctx.Err() != nil {
					placeErrs[i] = fmt.Errorf("%s: %w", items[i].Output, ctx.Err())
					continue
				}
				if d.swarm.Load() {
					mu.Lock()
					rest = append(rest, i)
					mu.Unlock()
					continue
				}
				w := want[rels[i]]
				n, err := download(ctx, hc, d.cfg.StallTimeout, items[i], 0, &w, func(f *os.File) { d.give(rels[i], f) }, func(n int) { d.received.Add(int64(n)) })
				if err != nil {
					placeErrs[i] = fmt.Errorf("%s: %s: %w", items[i].Output, items[i].URL, err)
					mu.Lock()
					rest = append(rest, i)
					mu.Unlock()
					continue
				}
				placed.Add(n)
				d.got.Add(n)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			d.progress()
			if d.cfg.Warn != nil {
				for _, i := range rest {
					if placeErrs[i] != nil {
						d.cfg.Warn(fmt.Sprintf("fetching %d files through the agent: the mirror failed: %v", len(rest), placeErrs[i]))
						break
					}
				}
			}
			return rest
		case <-tick.C:
			d.progress()
		}
	}
}

func (d *directFetch) progress() {
	if d.cfg.Progress != nil {
		n := d.received.Load()
		d.cfg.Progress(control.Progress{Total: d.total, Completed: min(n, d.total), FromWebseed: n, Webseed: true})
	}
}

// give sends the placed file f, the torrent's file rel, to the agent and
// closes it. The agent seeding it is a bonus: a failure is not the fetch's.
func (d *directFetch) give(rel string, f *os.File) {
	defer f.Close()
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	d.conn.SendFiles([]string{rel}, []*os.File{f})
}
