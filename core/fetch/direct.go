package fetch

import (
	"context"
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
// agent, which seeds it (control: the "direct" reply).
type directFetch struct {
	cfg      Config
	conn     *control.Conn
	todo     []int // the items it downloads
	total    int64
	received atomic.Int64
	sendMu   sync.Mutex
}

// run downloads items[i] for every i in d.todo from its URL, each checked
// against the torrent's want for it as it arrives, places it and sends it to
// the agent; errors go to placeErrs, placed bytes to placed.
func (d *directFetch) run(ctx context.Context, items []Item, rels []string, want map[string]expect, placeErrs []error, placed *atomic.Int64) {
	hc := httpClient(d.cfg)
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = directWorkers
	defer hc.CloseIdleConnections()
	jobs := make(chan int, len(d.todo))
	for _, i := range d.todo {
		jobs <- i
	}
	close(jobs)
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
				w := want[rels[i]]
				n, err := download(ctx, hc, d.cfg.StallTimeout, items[i], 0, &w, func(f *os.File) { d.give(rels[i], f) }, func(n int) { d.received.Add(int64(n)) })
				if err != nil {
					placeErrs[i] = fmt.Errorf("%s: %s: %w", items[i].Output, items[i].URL, err)
					continue
				}
				placed.Add(n)
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
			return
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
