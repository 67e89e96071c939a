// Package bench is pkgtorrent's swarm benchmark: on one machine it runs the
// real pkgtorrent-service and pkgtorrent-get binaries as separate processes
// on 127.0.0.1 (one service, N hosts each with its own agent) against a
// synthetic package tree, and measures them side by side with what a fleet
// does without pkgtorrent: N plain HTTP clients, and curl.
//
// Phases (see Report): bursts at several N on a capped origin (HTTP-only
// and pkgtorrent, with the lower bound T_min), a staggered arrival on an
// uncapped origin, one client against curl, the service's torrent build
// time and cold hashing throughput against sha1sum, and the agents' peak
// RSS.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/batch"
	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// Config configures a benchmark run. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// N is the largest burst; Ns are the burst sizes of the chart (N is
	// added when missing).
	N  int
	Ns []int
	// Files and Bytes are the number and total size of the batch's files.
	Files int
	Bytes int64
	// OriginRate is U, the origin's cap in bytes/s during bursts.
	OriginRate int64
	// UploadRate is each pkgtorrent client's upload cap in bytes/s.
	UploadRate int64
	// StaggerWindow is the window over which the staggered clients arrive.
	StaggerWindow time.Duration
	// HTTPParallel is how many files a plain HTTP client fetches at once
	// (dnf's max_parallel_downloads is 3).
	HTTPParallel int
	// Reps is how often the single-client and service timings are taken
	// (the median is reported).
	Reps int
	// Seed makes the tree and the arrival times reproducible.
	Seed int64
	// WorkDir holds the tree, the binaries and the hosts; "" makes a
	// temporary directory, removed at the end.
	WorkDir string
	// BinDir holds prebuilt pkgtorrent-get and pkgtorrent-service; ""
	// builds them with "go build" into the work directory.
	BinDir string
	// EngineEnv are extra KEY=VALUE environment variables for the
	// pkgtorrent-get processes and their agents (for example the engine's
	// own settings the agent does not set).
	EngineEnv []string
	// Phases selects what runs, among Phases (nil: all).
	Phases []string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Phases are the parts of a run, in the order they run.
var Phases = []string{"service", "single", "burst", "stagger", "fleet"}

// DefaultConfig is the default run: N=10 with 100 MiB in 1,000 files, the
// origin capped at 25 MiB/s and each client's upload at 5 MiB/s during
// bursts.
func DefaultConfig() Config {
	return Config{
		N:             10,
		Files:         1000,
		Bytes:         100 << 20,
		OriginRate:    25 << 20,
		UploadRate:    5 << 20,
		StaggerWindow: 15 * time.Second,
		HTTPParallel:  3,
		Reps:          3,
		Seed:          1,
	}
}

func (c *Config) fill() error {
	d := DefaultConfig()
	if c.N <= 0 {
		c.N = d.N
	}
	if c.Files <= 0 {
		c.Files = d.Files
	}
	if c.Bytes <= 0 {
		c.Bytes = d.Bytes
	}
	if c.OriginRate <= 0 {
		c.OriginRate = d.OriginRate
	}
	if c.UploadRate < 0 {
		return fmt.Errorf("negative upload rate %d", c.UploadRate)
	}
	if c.StaggerWindow <= 0 {
		c.StaggerWindow = d.StaggerWindow
	}
	if c.HTTPParallel <= 0 {
		c.HTTPParallel = d.HTTPParallel
	}
	if c.Reps <= 0 {
		c.Reps = d.Reps
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if len(c.Ns) == 0 {
		for _, n := range []int{c.N / 4, c.N / 2} {
			if n >= 2 && !slices.Contains(c.Ns, n) {
				c.Ns = append(c.Ns, n)
			}
		}
	}
	if !slices.Contains(c.Ns, c.N) {
		c.Ns = append(c.Ns, c.N)
	}
	slices.Sort(c.Ns)
	if c.Ns[0] < 1 {
		return fmt.Errorf("burst size %d: want at least 1", c.Ns[0])
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if len(c.Phases) == 0 {
		c.Phases = Phases
	}
	for _, p := range c.Phases {
		if !slices.Contains(Phases, p) {
			return fmt.Errorf("unknown phase %q (phases: %s)", p, strings.Join(Phases, ", "))
		}
	}
	for _, kv := range c.EngineEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("engine setting %q is not KEY=VALUE", kv)
		}
	}
	return nil
}

// Report holds every figure of a run. Times are in seconds, sizes in bytes.
type Report struct {
	Config  ReportConfig  `json:"config"`
	Machine Machine       `json:"machine"`
	Bursts  []Burst       `json:"bursts"`
	Stagger Stagger       `json:"staggered"`
	Single  Single        `json:"single_client"`
	Service ServiceFigure `json:"service"`
	RSS     RSS           `json:"agent_rss"`
	Fleet   *Fleet        `json:"fleet,omitempty"`
	Targets []Target      `json:"targets"`
	Seconds float64       `json:"seconds"`
}

// ReportConfig is the configuration a report was made with.
type ReportConfig struct {
	N             int      `json:"n"`
	Ns            []int    `json:"ns"`
	Files         int      `json:"files"`
	Bytes         int64    `json:"bytes"`
	PadBytes      int64    `json:"pad_bytes"`
	LargestFile   int64    `json:"largest_file"`
	MedianFile    int64    `json:"median_file"`
	OriginRate    int64    `json:"origin_rate"`
	UploadRate    int64    `json:"upload_rate"`
	StaggerWindow float64  `json:"stagger_window"`
	HTTPParallel  int      `json:"http_parallel"`
	Reps          int      `json:"reps"`
	Seed          int64    `json:"seed"`
	Phases        []string `json:"phases"`
	EngineEnv     []string `json:"engine_env,omitempty"`
}

// Machine describes where the run took place.
type Machine struct {
	CPUs      int       `json:"cpus"`
	GoVersion string    `json:"go_version"`
	Start     time.Time `json:"start"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1-minute averages.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Burst is N clients fetching the batch at once from the capped origin.
type Burst struct {
	N int `json:"n"`
	// TMin is the lower bound max(F/U, N*F/(U + N*c)) (client downloads
	// are not capped: the F/d term is 0).
	TMin float64     `json:"t_min"`
	HTTP BurstResult `json:"http"`
	P2P  BurstResult `json:"pkgtorrent"`
	// Speedup is the HTTP-only burst time over pkgtorrent's.
	Speedup float64 `json:"speedup"`
}

// BurstResult is one side of a burst.
type BurstResult struct {
	// Seconds is the wall time until the last client finished.
	Seconds float64 `json:"seconds"`
	// ClientSeconds are each client's wall times, sorted.
	ClientSeconds []float64 `json:"client_seconds"`
	// OriginBytes is what the service sent (its own file_bytes_sent).
	OriginBytes int64 `json:"origin_bytes"`
	// OriginCopies is OriginBytes over the batch size.
	OriginCopies float64 `json:"origin_copies"`
	// Delivered is the payload bytes the clients received in total.
	Delivered int64 `json:"delivered"`
	// P2PShare is 1 - OriginBytes/Delivered.
	P2PShare float64 `json:"p2p_share"`
	// Moved is every data byte sent: the origin's plus the agents' uploads
	// to peers (padding and duplicates included); WireOverhead is Moved
	// over Delivered.
	Moved        int64   `json:"moved,omitempty"`
	WireOverhead float64 `json:"wire_overhead,omitempty"`
	// RatioTMin is Seconds over the burst's T_min.
	RatioTMin float64 `json:"ratio_t_min"`
	// PeakRSS is the largest agent peak RSS of the burst (pkgtorrent only).
	PeakRSS int64 `json:"peak_rss,omitempty"`
	// CPUPerGiB is the agents' CPU seconds (user and system, all of them
	// together) per GiB delivered (pkgtorrent only).
	CPUPerGiB float64 `json:"cpu_seconds_per_gib,omitempty"`
	// ClientCPUPerGiB is the same for the pkgtorrent-get processes (asking
	// for the torrent, checking and placing the files).
	ClientCPUPerGiB float64 `json:"client_cpu_seconds_per_gib,omitempty"`
}

// Stagger is N clients arriving over a window, origin uncapped.
type Stagger struct {
	N       int       `json:"n"`
	Window  float64   `json:"window"`
	Arrival []float64 `json:"arrival"`
	// HTTP and P2P hold each client's time, in arrival order.
	HTTP StaggerResult `json:"http"`
	P2P  StaggerResult `json:"pkgtorrent"`
	// RatioMedian and RatioMax compare each client's pkgtorrent time with
	// its HTTP time.
	RatioMedian float64 `json:"ratio_median"`
	RatioMax    float64 `json:"ratio_max"`
}

// StaggerResult is one side of the staggered case.
type StaggerResult struct {
	ClientSeconds []float64 `json:"client_seconds"`
	OriginBytes   int64     `json:"origin_bytes"`
	OriginCopies  float64   `json:"origin_copies"`
	P2PShare      float64   `json:"p2p_share"`
	Moved         int64     `json:"moved,omitempty"`
	WireOverhead  float64   `json:"wire_overhead,omitempty"`
}

// Single is one client, no peers, uncapped origin, against curl.
type Single struct {
	// Seconds and CurlSeconds are the medians over Reps; Ratio is their
	// quotient.
	Seconds     float64   `json:"seconds"`
	CurlSeconds float64   `json:"curl_seconds"`
	Ratio       float64   `json:"ratio"`
	All         []float64 `json:"all_seconds"`
	CurlAll     []float64 `json:"curl_all_seconds"`
	// AgentPeakRSS is the agent's peak RSS after fetching and placing.
	AgentPeakRSS int64 `json:"agent_peak_rss"`
}

// ServiceFigure measures the service alone.
type ServiceFigure struct {
	// Build500 is the median time (over BuildSamples) of a POST of a new
	// 500-file batch whose hashes are cached, seen from an HTTP client on
	// loopback; Build500Files is the batch size when the tree has fewer.
	Build500      float64   `json:"build_500"`
	Build500Files int       `json:"build_500_files"`
	BuildSamples  []float64 `json:"build_samples"`
	// HashSeconds and HashRate are the cold build of the whole batch
	// (every file hashed); SHA1sum* are sha1sum over the same files.
	HashSeconds    float64 `json:"hash_seconds"`
	HashRate       float64 `json:"hash_rate"`
	SHA1sumSeconds float64 `json:"sha1sum_seconds"`
	SHA1sumRate    float64 `json:"sha1sum_rate"`
	// HashRatio is HashRate over SHA1sumRate.
	HashRatio float64 `json:"hash_ratio"`
}

// RSS is the agents' peak resident set size (VmHWM) while seeding.
type RSS struct {
	// Files is how many files the agents were seeding.
	Files int `json:"files"`
	// Max and Median are over the agents of the largest burst, read after
	// they fetched the batch and served their peers.
	Max    int64 `json:"max"`
	Median int64 `json:"median"`
}

// Target is one of the benchmark's targets and where the run stands.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	// Max tells whether Limit is an upper (true) or lower bound.
	Max bool `json:"max"`
	Met bool `json:"met"`
}

// run is the state of one benchmark run.
type run struct {
	cfg   Config
	work  string
	bin   string
	root  string
	files []treeFile
	size  int64
	rels  []string
	hosts int // hosts made so far, for unique directories
	logf  func(format string, args ...any)
}

// Run runs the benchmark and returns its figures.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	start := time.Now()
	r := &run{cfg: cfg, work: cfg.WorkDir, bin: cfg.BinDir}
	r.logf = func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	if r.work == "" {
		d, err := os.MkdirTemp("", "pkgtorrent-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(d)
		r.work = d
	} else if err := os.MkdirAll(r.work, 0o755); err != nil {
		return nil, fmt.Errorf("bench: work directory: %w", err)
	}
	// Run by root, pkgtorrent-get starts its agents as an unprivileged user,
	// who must reach the hosts' state directories below the work directory.
	if err := os.Chmod(r.work, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	rep := &Report{Machine: Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Start: start.UTC(), LoadBefore: loadAvg()}}
	if r.bin == "" {
		r.bin = filepath.Join(r.work, "bin")
		r.logf("building the binaries")
		if err := BuildBinaries(ctx, r.bin); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	r.root = filepath.Join(r.work, "root")
	r.logf("making a tree of %d files, %d bytes", cfg.Files, cfg.Bytes)
	files, err := makeTree(r.root, cfg.Seed, cfg.Files, cfg.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r.files, r.size = files, totalSize(files)
	for _, f := range files {
		r.rels = append(r.rels, f.Rel)
	}
	rep.Config = r.reportConfig()

	if slices.Contains(cfg.Phases, "service") {
		if err := r.service(ctx, rep); err != nil {
			return nil, fmt.Errorf("bench: service: %w", err)
		}
	}
	if slices.Contains(cfg.Phases, "single") {
		if err := r.single(ctx, rep); err != nil {
			return nil, fmt.Errorf("bench: single client: %w", err)
		}
	}
	if slices.Contains(cfg.Phases, "burst") {
		for _, n := range cfg.Ns {
			b, err := r.burst(ctx, n, n == cfg.N, rep)
			if err != nil {
				return nil, fmt.Errorf("bench: burst of %d: %w", n, err)
			}
			rep.Bursts = append(rep.Bursts, b)
		}
	}
	if slices.Contains(cfg.Phases, "stagger") {
		if err := r.stagger(ctx, rep); err != nil {
			return nil, fmt.Errorf("bench: staggered: %w", err)
		}
	}
	if slices.Contains(cfg.Phases, "fleet") {
		if err := r.fleet(ctx, rep); err != nil {
			return nil, fmt.Errorf("bench: fleet: %w", err)
		}
	}
	rep.Targets = targets(rep)
	rep.Machine.LoadAfter = loadAvg()
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func (r *run) reportConfig() ReportConfig {
	sizes := make([]int64, len(r.files))
	size := map[string]int64{}
	for i, f := range r.files {
		sizes[i] = f.Size
		size[f.Rel] = f.Size
	}
	// Pads follow every file but the last in the batch's canonical order.
	canon, _ := batch.Canonical(r.rels)
	var pad int64
	for _, rel := range canon[:len(canon)-1] {
		pad += torrentfile.PadLength(size[rel])
	}
	slices.Sort(sizes)
	c := r.cfg
	return ReportConfig{
		N: c.N, Ns: c.Ns, Files: len(r.files), Bytes: r.size, PadBytes: pad,
		LargestFile: sizes[len(sizes)-1], MedianFile: sizes[len(sizes)/2],
		OriginRate: c.OriginRate, UploadRate: c.UploadRate,
		StaggerWindow: c.StaggerWindow.Seconds(), HTTPParallel: c.HTTPParallel,
		Reps: c.Reps, Seed: c.Seed, Phases: c.Phases, EngineEnv: c.EngineEnv,
	}
}

// newHost makes a host with a fresh state directory.
func (r *run) newHost() (*host, error) {
	r.hosts++
	return newHost(r.bin, filepath.Join(r.work, "hosts", fmt.Sprint(r.hosts)), r.cfg.EngineEnv)
}

// stopHosts stops the hosts' agents and removes their directories.
func stopHosts(hosts []*host) error {
	var errs []error
	for _, h := range hosts {
		if h == nil {
			continue
		}
		errs = append(errs, h.stop())
		os.RemoveAll(filepath.Dir(h.state))
	}
	return errors.Join(errs...)
}

// tMin is the burst's lower bound: the origin must send the batch once at
// U, and the N*F bytes delivered cannot flow faster than the origin and all
// client uploads together (uncapped uploads: the origin alone bounds it).
func tMin(n int, f, u, c int64) float64 {
	t := float64(f) / float64(u)
	if c > 0 {
		t = max(t, float64(n)*float64(f)/float64(u+int64(n)*c))
	}
	return t
}

// burst runs the HTTP-only and the pkgtorrent burst of n clients on an
// origin capped at U.
func (r *run) burst(ctx context.Context, n int, largest bool, rep *Report) (Burst, error) {
	b := Burst{N: n, TMin: tMin(n, r.size, r.cfg.OriginRate, r.cfg.UploadRate)}
	svc, err := startService(r.bin, r.root, r.cfg.OriginRate)
	if err != nil {
		return b, err
	}
	defer svc.stop()
	// The service knows the batch, as after the first host of a fleet
	// asked for it: the burst measures the transfer, not the hashing.
	if err := svc.buildBatch(r.rels); err != nil {
		return b, err
	}

	r.logf("burst %d: plain HTTP", n)
	before, err := svc.stats()
	if err != nil {
		return b, err
	}
	times := make([]float64, n)
	errs := make([]error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			errs[i] = httpFetch(ctx, svc, r.files, r.cfg.HTTPParallel, filepath.Join(r.work, "http", fmt.Sprint(i)))
			times[i] = time.Since(t0).Seconds()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return b, err
	}
	b.HTTP.Seconds = time.Since(start).Seconds()
	after, err := svc.stats()
	if err != nil {
		return b, err
	}
	b.HTTP.ClientSeconds = sorted(times)
	r.fill(&b.HTTP, after.FileBytesSent-before.FileBytesSent, int64(n)*r.size, 0, b.TMin)
	r.logf("burst %d: plain HTTP %.1fs, origin %.2f copies", n, b.HTTP.Seconds, b.HTTP.OriginCopies)

	r.logf("burst %d: pkgtorrent", n)
	hosts := make([]*host, n)
	defer stopHosts(hosts)
	for i := range hosts {
		if hosts[i], err = r.newHost(); err != nil {
			return b, err
		}
	}
	if before, err = svc.stats(); err != nil {
		return b, err
	}
	results := make([]getResult, n)
	start = time.Now()
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.fetch(ctx, svc, r.files, r.cfg.UploadRate)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return b, err
	}
	b.P2P.Seconds = time.Since(start).Seconds()
	if after, err = svc.stats(); err != nil {
		return b, err
	}
	var delivered, uploaded int64
	var rss []int64
	var cpu, clientCPU float64
	for i, h := range hosts {
		times[i] = results[i].Wall
		clientCPU += results[i].CPU
		delivered += results[i].Bytes
		st, err := h.status(ctx)
		if err != nil {
			return b, err
		}
		uploaded += st.Uploaded
		m, err := peakRSS(st.PID)
		if err != nil {
			return b, err
		}
		rss = append(rss, m)
		c, err := cpuSeconds(st.PID)
		if err != nil {
			return b, err
		}
		cpu += c
	}
	if delivered != int64(n)*r.size {
		return b, fmt.Errorf("the clients placed %d bytes, want %d", delivered, int64(n)*r.size)
	}
	b.P2P.ClientSeconds = sorted(times)
	r.fill(&b.P2P, after.FileBytesSent-before.FileBytesSent, delivered, uploaded+after.PadBytesSent-before.PadBytesSent, b.TMin)
	slices.Sort(rss)
	b.P2P.PeakRSS = rss[len(rss)-1]
	b.P2P.CPUPerGiB = cpu / (float64(delivered) / (1 << 30))
	b.P2P.ClientCPUPerGiB = clientCPU / (float64(delivered) / (1 << 30))
	if largest {
		rep.RSS = RSS{Files: len(r.files), Max: rss[len(rss)-1], Median: rss[len(rss)/2]}
	}
	b.Speedup = b.HTTP.Seconds / b.P2P.Seconds
	r.logf("burst %d: pkgtorrent %.1fs (T_min %.1fs), origin %.2f copies", n, b.P2P.Seconds, b.TMin, b.P2P.OriginCopies)
	return b, stopHosts(hosts)
}

// fill computes a burst result's derived figures. moved is the bytes sent
// besides the origin's (0 for plain HTTP, where nothing else moves).
func (r *run) fill(br *BurstResult, origin, delivered, moved int64, tmin float64) {
	br.OriginBytes = origin
	br.OriginCopies = float64(origin) / float64(r.size)
	br.Delivered = delivered
	br.P2PShare = 1 - float64(origin)/float64(delivered)
	br.Moved = origin + moved
	br.WireOverhead = float64(br.Moved) / float64(delivered)
	br.RatioTMin = br.Seconds / tmin
}

// stagger runs N clients arriving over the window, plain HTTP and then
// pkgtorrent, on an uncapped origin.
func (r *run) stagger(ctx context.Context, rep *Report) error {
	n := r.cfg.N
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 0x737467))
	arrival := make([]float64, n)
	for i := 1; i < n; i++ {
		arrival[i] = rng.Float64() * r.cfg.StaggerWindow.Seconds()
	}
	slices.Sort(arrival)
	s := Stagger{N: n, Window: r.cfg.StaggerWindow.Seconds(), Arrival: arrival}
	svc, err := startService(r.bin, r.root, 0)
	if err != nil {
		return err
	}
	defer svc.stop()
	if err := svc.buildBatch(r.rels); err != nil {
		return err
	}
	// each starts client i at its arrival time and waits for all.
	each := func(client func(i int) (float64, error)) ([]float64, error) {
		times := make([]float64, n)
		errs := make([]error, n)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-time.After(time.Duration(arrival[i]*float64(time.Second)) - time.Since(start)):
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				}
				times[i], errs[i] = client(i)
			}()
		}
		wg.Wait()
		return times, errors.Join(errs...)
	}

	r.logf("staggered %d over %s: plain HTTP", n, r.cfg.StaggerWindow)
	before, err := svc.stats()
	if err != nil {
		return err
	}
	if s.HTTP.ClientSeconds, err = each(func(i int) (float64, error) {
		t0 := time.Now()
		err := httpFetch(ctx, svc, r.files, r.cfg.HTTPParallel, filepath.Join(r.work, "http", fmt.Sprint(i)))
		return time.Since(t0).Seconds(), err
	}); err != nil {
		return err
	}
	after, err := svc.stats()
	if err != nil {
		return err
	}
	s.HTTP.OriginBytes = after.FileBytesSent - before.FileBytesSent
	s.HTTP.OriginCopies = float64(s.HTTP.OriginBytes) / float64(r.size)
	s.HTTP.P2PShare = 1 - s.HTTP.OriginCopies/float64(n)
	s.HTTP.Moved = s.HTTP.OriginBytes
	s.HTTP.WireOverhead = s.HTTP.OriginCopies / float64(n)

	r.logf("staggered %d over %s: pkgtorrent", n, r.cfg.StaggerWindow)
	hosts := make([]*host, n)
	defer stopHosts(hosts)
	for i := range hosts {
		if hosts[i], err = r.newHost(); err != nil {
			return err
		}
	}
	if before, err = svc.stats(); err != nil {
		return err
	}
	if s.P2P.ClientSeconds, err = each(func(i int) (float64, error) {
		res, err := hosts[i].fetch(ctx, svc, r.files, 0)
		return res.Wall, err
	}); err != nil {
		return err
	}
	if after, err = svc.stats(); err != nil {
		return err
	}
	var uploaded int64
	for _, h := range hosts {
		st, err := h.status(ctx)
		if err != nil {
			return err
		}
		uploaded += st.Uploaded
	}
	delivered := float64(n) * float64(r.size)
	s.P2P.OriginBytes = after.FileBytesSent - before.FileBytesSent
	s.P2P.OriginCopies = float64(s.P2P.OriginBytes) / float64(r.size)
	s.P2P.P2PShare = 1 - float64(s.P2P.OriginBytes)/delivered
	s.P2P.Moved = s.P2P.OriginBytes + uploaded + after.PadBytesSent - before.PadBytesSent
	s.P2P.WireOverhead = float64(s.P2P.Moved) / delivered
	ratios := make([]float64, n)
	for i := range ratios {
		ratios[i] = s.P2P.ClientSeconds[i] / s.HTTP.ClientSeconds[i]
	}
	ratios = sorted(ratios)
	s.RatioMedian, s.RatioMax = median(ratios), ratios[n-1]
	rep.Stagger = s
	r.logf("staggered: origin %.2f copies (HTTP %.2f); client time ratio median %.2f, max %.2f", s.P2P.OriginCopies, s.HTTP.OriginCopies, s.RatioMedian, s.RatioMax)
	return stopHosts(hosts)
}

func sorted(v []float64) []float64 {
	out := slices.Clone(v)
	sort.Float64s(out)
	return out
}

func median(v []float64) float64 {
	s := sorted(v)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAvg returns the 1-minute load average (0 when unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscanf(string(b), "%f", &l)
	return l
}
