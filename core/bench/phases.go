package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// httpFetch is one plain HTTP client: it downloads every file from the
// service's file URLs into dir (made, and removed at the end), parallel at
// a time on its own connections, and checks the lengths.
func httpFetch(ctx context.Context, svc *serviceProc, files []treeFile, parallel int, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tr := &http.Transport{MaxConnsPerHost: parallel, MaxIdleConnsPerHost: parallel, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	type job struct {
		f   treeFile
		out string
	}
	work := make(chan job)
	errc := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if err := httpGet(ctx, hc, svc.fileURL(j.f.Rel), j.f.Size, j.out); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i, f := range files {
		select {
		case work <- job{f, filepath.Join(dir, fmt.Sprint(i))}:
		case err = <-errc:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

func httpGet(ctx context.Context, hc *http.Client, u string, size int64, out string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("plain HTTP client: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("plain HTTP client: GET %s: %s", u, resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("plain HTTP client: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("plain HTTP client: GET %s: %w", u, err)
	}
	if n != size {
		return fmt.Errorf("plain HTTP client: GET %s: %d bytes, want %d", u, n, size)
	}
	return nil
}

// buildFiles is the size of the batch whose build time is measured.
const buildFiles = 500

// buildSamples is how many new batches the build time is the median of.
const buildSamples = 20

// service measures the service alone: cold hashing of the whole batch
// against sha1sum, and building torrents of new 500-file batches whose
// hashes are cached.
func (r *run) service(ctx context.Context, rep *Report) error {
	f := &rep.Service
	// Read every file once so that both sides find them in the page cache.
	if _, err := r.sha1sum(ctx); err != nil {
		return err
	}
	var hashTimes, sumTimes []float64
	var svc *serviceProc
	for i := range r.cfg.Reps {
		if svc != nil {
			svc.stop()
		}
		var err error
		if svc, err = startService(r.bin, r.root, 0); err != nil {
			return err
		}
		t0 := time.Now()
		if err := svc.buildBatch(r.rels); err != nil {
			svc.stop()
			return err
		}
		hashTimes = append(hashTimes, time.Since(t0).Seconds())
		st, err := svc.stats()
		if err != nil {
			svc.stop()
			return err
		}
		if st.HashBytesRead != r.size {
			svc.stop()
			return fmt.Errorf("the cold build read %d bytes for hashing, want %d", st.HashBytesRead, r.size)
		}
		s, err := r.sha1sum(ctx)
		if err != nil {
			svc.stop()
			return err
		}
		sumTimes = append(sumTimes, s)
		r.logf("service: cold build %d: %.2fs hashing, sha1sum %.2fs", i+1, hashTimes[i], s)
	}
	defer svc.stop()
	f.HashSeconds, f.SHA1sumSeconds = median(hashTimes), median(sumTimes)
	f.HashRate = float64(r.size) / f.HashSeconds
	f.SHA1sumRate = float64(r.size) / f.SHA1sumSeconds
	f.HashRatio = f.HashRate / f.SHA1sumRate

	// New batches of cached files: random subsets of the tree.
	k := min(buildFiles, len(r.rels))
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 0x6275696c64))
	for range buildSamples {
		pick := make([]string, 0, k)
		for _, i := range rng.Perm(len(r.rels))[:k] {
			pick = append(pick, r.rels[i])
		}
		t0 := time.Now()
		if err := svc.buildBatch(pick); err != nil {
			return err
		}
		f.BuildSamples = append(f.BuildSamples, time.Since(t0).Seconds())
	}
	st, err := svc.stats()
	if err != nil {
		return err
	}
	if st.HashBytesRead != r.size {
		return fmt.Errorf("builds of cached files read %d bytes for hashing", st.HashBytesRead-r.size)
	}
	f.Build500, f.Build500Files = median(f.BuildSamples), k
	r.logf("service: new %d-file batch in %.1f ms (median of %d); hashing %.0f MB/s, sha1sum %.0f MB/s", k, f.Build500*1000, buildSamples, f.HashRate/1e6, f.SHA1sumRate/1e6)
	return nil
}

// sha1sum runs sha1sum over the tree's files and returns its wall time.
func (r *run) sha1sum(ctx context.Context) (float64, error) {
	cmd := exec.CommandContext(ctx, "sha1sum", r.rels...)
	cmd.Dir = r.root
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("sha1sum: %w: %s", err, stderr.String())
	}
	return time.Since(t0).Seconds(), nil
}

// single measures one client alone (no peers, uncapped origin, the
// service knowing the batch) against curl fetching the same files from the
// same origin, Reps times each, alternating which goes first.
func (r *run) single(ctx context.Context, rep *Report) error {
	svc, err := startService(r.bin, r.root, 0)
	if err != nil {
		return err
	}
	defer svc.stop()
	if err := svc.buildBatch(r.rels); err != nil {
		return err
	}
	s := &rep.Single
	curlOut := filepath.Join(r.work, "curl")
	cfgPath := filepath.Join(r.work, "curl.cfg")
	var sb strings.Builder
	for i, f := range r.files {
		fmt.Fprintf(&sb, "url = \"%s\"\noutput = \"%s\"\n", svc.fileURL(f.Rel), filepath.Join(curlOut, fmt.Sprint(i)))
	}
	if err := os.WriteFile(cfgPath, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	curl := func() error {
		os.RemoveAll(curlOut)
		if err := os.MkdirAll(curlOut, 0o755); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "curl", "--config", cfgPath, "--fail", "--silent", "--show-error")
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("curl: %w: %s", err, out)
		}
		s.CurlAll = append(s.CurlAll, time.Since(t0).Seconds())
		return os.RemoveAll(curlOut)
	}
	get := func() error {
		h, err := r.newHost()
		if err != nil {
			return err
		}
		defer stopHosts([]*host{h})
		res, err := h.fetch(ctx, svc, r.files, 0)
		if err != nil {
			return err
		}
		if res.BytesFromPeers != 0 {
			return fmt.Errorf("the single client got %d bytes from peers", res.BytesFromPeers)
		}
		s.All = append(s.All, res.Wall)
		st, err := h.status(ctx)
		if err != nil {
			return err
		}
		m, err := peakRSS(st.PID)
		if err != nil {
			return err
		}
		s.AgentPeakRSS = max(s.AgentPeakRSS, m)
		return nil
	}
	for i := range r.cfg.Reps {
		order := []func() error{curl, get}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, f := range order {
			if err := f(); err != nil {
				return err
			}
		}
		r.logf("single client %d: pkgtorrent %.2fs, curl %.2fs", i+1, s.All[i], s.CurlAll[i])
	}
	s.Seconds, s.CurlSeconds = median(s.All), median(s.CurlAll)
	s.Ratio = s.Seconds / s.CurlSeconds
	return nil
}

// targets are the targets, evaluated on the largest burst.
func targets(rep *Report) []Target {
	t := func(name string, v, limit float64, isMax bool) Target {
		met := v <= limit
		if !isMax {
			met = v >= limit
		}
		return Target{Name: name, Value: v, Limit: limit, Max: isMax, Met: met}
	}
	var out []Target
	if len(rep.Bursts) > 0 {
		b := rep.Bursts[len(rep.Bursts)-1]
		out = append(out,
			t(fmt.Sprintf("burst N=%d: origin copies", b.N), b.P2P.OriginCopies, 1.3, true),
			t(fmt.Sprintf("burst N=%d: p2p share", b.N), b.P2P.P2PShare, 0.93, false),
			t(fmt.Sprintf("burst N=%d: time / T_min", b.N), b.P2P.RatioTMin, 1.3, true),
			t(fmt.Sprintf("burst N=%d: time / HTTP-only time", b.N), b.P2P.Seconds/b.HTTP.Seconds, 0.2, true),
		)
	}
	if rep.Single.Ratio > 0 {
		out = append(out, t("single client: time / curl time", rep.Single.Ratio, 1.1, true))
	}
	if rep.Service.HashRatio > 0 {
		out = append(out,
			t(fmt.Sprintf("service: new %d-file batch, cached hashes (s)", rep.Service.Build500Files), rep.Service.Build500, 0.010, true),
			t("service: cold hashing / sha1sum", rep.Service.HashRatio, 0.8, false))
	}
	if f := rep.Fleet; f != nil && f.DistinctShare < 0.2 {
		out = append(out, t(fmt.Sprintf("fleet N=%d: p2p share (distinct %.0f%% of delivered)", f.N, 100*f.DistinctShare), f.CrossBatch.P2PShare, 0.9, false))
	}
	if rep.RSS.Max > 0 {
		out = append(out, t(fmt.Sprintf("agent peak RSS seeding %d files (MiB)", rep.RSS.Files), float64(rep.RSS.Max)/(1<<20), 100, true))
	}
	return out
}
