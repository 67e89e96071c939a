package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The fleet phase: N hosts, each with its own transaction drawn from a
// model of a repository, at once, on a capped origin. Package sizes come
// from a real index when the machine has one (the Size fields of the
// Debian Packages indexes apt keeps), else from the synthetic tree's
// distribution. Each host has installed a random subset of the packages,
// popular ones more often (a Zipf-like skew); an update round replaces a
// fraction of the packages, and a host's transaction is the updated
// packages it has. The popularity model: the base system (the first
// fleetBase of the packages by rank) is on nearly every host, the rest
// falls off with rank as the roles' packages do. Plain HTTP, pkgtorrent with sharing across batches, and
// pkgtorrent with one swarm per batch (cross-batch off) run in turn.

// Fleet holds the fleet phase's figures.
type Fleet struct {
	N int `json:"n"`
	// Packages is the repository's size in packages, Updated how many the
	// round updated; Source is where the sizes came from.
	Packages int    `json:"packages"`
	Updated  int    `json:"updated"`
	Source   string `json:"sizes_from"`
	// TransactionFiles are the hosts' transaction sizes in files.
	TransactionFiles []int `json:"transaction_files"`
	// Distinct is the bytes of the union of the transactions, Delivered
	// their sum; DistinctShare is Distinct / Delivered.
	Distinct      int64   `json:"distinct_bytes"`
	Delivered     int64   `json:"delivered_bytes"`
	DistinctShare float64 `json:"distinct_share"`
	// HTTP, CrossBatch and PerBatch are the three runs.
	HTTP       FleetResult `json:"http"`
	CrossBatch FleetResult `json:"cross_batch"`
	PerBatch   FleetResult `json:"per_batch"`
}

// FleetResult is one run of the fleet phase.
type FleetResult struct {
	// Seconds is the time until the last host was done.
	Seconds       float64   `json:"seconds"`
	ClientSeconds []float64 `json:"client_seconds"`
	// OriginBytes is what the origin sent; OriginRatio is it over the
	// distinct bytes.
	OriginBytes int64   `json:"origin_bytes"`
	OriginRatio float64 `json:"origin_ratio"`
	// P2PShare is 1 - origin bytes / delivered bytes.
	P2PShare float64 `json:"p2p_share"`
	// RatioHTTPMedian and RatioHTTPMax compare each host's time with the
	// same host's in the plain HTTP run (0 for that run).
	RatioHTTPMedian float64 `json:"ratio_http_median,omitempty"`
	RatioHTTPMax    float64 `json:"ratio_http_max,omitempty"`
}

const (
	// fleetPackages is the repository's size in packages.
	fleetPackages = 400
	// fleetUpdate is the fraction of packages an update round replaces.
	fleetUpdate = 0.3
	// fleetBase is the share of packages (by rank) of the base system,
	// installed with probability fleetBaseP; package k beyond it with
	// probability fleetTailP * base / k.
	fleetBase  = 0.4
	fleetBaseP = 0.95
	fleetTailP = 0.3
)

// installProb is the probability that a host has the package of rank k.
func installProb(k int) float64 {
	base := fleetBase * fleetPackages
	if float64(k) < base {
		return fleetBaseP
	}
	return fleetTailP * base / float64(k+1)
}

// indexSizes returns the package sizes of the Debian Packages indexes apt
// keeps on this machine (nil when there are none).
func indexSizes() ([]int64, string) {
	idx, _ := filepath.Glob("/var/lib/apt/lists/*_Packages*")
	slices.Sort(idx)
	var sizes []int64
	var from []string
	for _, p := range idx {
		if strings.HasSuffix(p, ".diff_Index") {
			continue
		}
		var data []byte
		var err error
		if strings.HasSuffix(p, "_Packages") {
			data, err = os.ReadFile(p)
		} else {
			// apt-helper decompresses any index format apt writes.
			data, err = exec.Command("/usr/lib/apt/apt-helper", "cat-file", p).Output()
		}
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Size: "); ok {
				if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && s > 0 {
					sizes = append(sizes, s)
					n++
				}
			}
		}
		if n > 0 {
			from = append(from, filepath.Base(p))
		}
	}
	if len(sizes) == 0 {
		return nil, ""
	}
	return sizes, strings.Join(from, ", ")
}

// fleetModel draws the repository's updated packages and each host's
// transaction: pkgs are the updated packages' files, txs[i] host i's.
func fleetModel(rng *rand.Rand, n int, total int64) (pkgs []treeFile, txs [][]treeFile, source string, err error) {
	sizes := make([]int64, fleetPackages)
	if real, from := indexSizes(); len(real) >= fleetPackages {
		for i := range sizes {
			sizes[i] = real[rng.IntN(len(real))]
		}
		source = from
	} else {
		if sizes, err = drawSizes(rng, fleetPackages, total); err != nil {
			return nil, nil, "", err
		}
		source = "synthetic"
	}
	// Scale to the configured total, keeping the distribution's shape.
	var sum int64
	for _, s := range sizes {
		sum += s
	}
	for i := range sizes {
		sizes[i] = max(minFileSize, int64(float64(sizes[i])*float64(total)/float64(sum)))
	}
	// Popularity rank is independent of size.
	rng.Shuffle(len(sizes), func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	updated := map[int]bool{}
	for i := range fleetPackages {
		if rng.Float64() < fleetUpdate {
			updated[i] = true
			pkgs = append(pkgs, treeFile{Rel: fmt.Sprintf("os/Packages/p%03d-2.0-1.x86_64.rpm", i), Size: sizes[i]})
		}
	}
	byRank := map[int]treeFile{}
	for _, f := range pkgs {
		var k int
		fmt.Sscanf(f.Rel, "os/Packages/p%03d-", &k)
		byRank[k] = f
	}
	txs = make([][]treeFile, n)
	for h := range n {
		for k := range fleetPackages {
			if updated[k] && rng.Float64() < installProb(k) {
				txs[h] = append(txs[h], byRank[k])
			}
		}
		if len(txs[h]) == 0 {
			txs[h] = append(txs[h], pkgs[rng.IntN(len(pkgs))])
		}
	}
	return pkgs, txs, source, nil
}

// fleet runs the fleet phase with N hosts.
func (r *run) fleet(ctx context.Context, rep *Report) error {
	n := r.cfg.N
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 0x666c656574))
	pkgs, txs, source, err := fleetModel(rng, n, r.cfg.Bytes)
	if err != nil {
		return err
	}
	root := filepath.Join(r.work, "fleet-root")
	buf := make([]byte, 1<<20)
	sums := make(map[string][sha256.Size]byte, len(pkgs))
	for _, f := range pkgs {
		sum, err := writeRandom(filepath.Join(root, filepath.FromSlash(f.Rel)), f.Size, rng, buf)
		if err != nil {
			return err
		}
		sums[f.Rel] = sum
	}
	for _, tx := range txs {
		for i := range tx {
			tx[i].SHA256 = sums[tx[i].Rel]
		}
	}
	fl := Fleet{N: n, Packages: fleetPackages, Updated: len(pkgs), Source: source}
	distinct := map[string]int64{}
	for _, tx := range txs {
		fl.TransactionFiles = append(fl.TransactionFiles, len(tx))
		for _, f := range tx {
			distinct[f.Rel] = f.Size
			fl.Delivered += f.Size
		}
	}
	for _, s := range distinct {
		fl.Distinct += s
	}
	fl.DistinctShare = float64(fl.Distinct) / float64(fl.Delivered)
	r.logf("fleet of %d: %d updated packages of %d, transactions of %v files; distinct %d bytes of %d delivered (%.0f%%)",
		n, len(pkgs), fleetPackages, fl.TransactionFiles, fl.Distinct, fl.Delivered, 100*fl.DistinctShare)

	httpTimes := make([]float64, n)
	runOnce := func(name string, env []string) (FleetResult, error) {
		var res FleetResult
		svc, err := startService(r.bin, root, r.cfg.OriginRate)
		if err != nil {
			return res, err
		}
		defer svc.stop()
		for _, tx := range txs {
			rels := make([]string, len(tx))
			for i, f := range tx {
				rels[i] = f.Rel
			}
			if err := svc.buildBatch(rels); err != nil {
				return res, err
			}
		}
		before, err := svc.stats()
		if err != nil {
			return res, err
		}
		times := make([]float64, n)
		errs := make([]error, n)
		hosts := make([]*host, n)
		defer stopHosts(hosts)
		if env != nil {
			for i := range hosts {
				if hosts[i], err = r.newHost(); err != nil {
					return res, err
				}
				hosts[i].env = append(hosts[i].env, env...)
			}
		}
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				if env == nil {
					errs[i] = httpFetch(ctx, svc, txs[i], r.cfg.HTTPParallel, filepath.Join(r.work, "fleet-http", fmt.Sprint(i)))
				} else {
					_, errs[i] = hosts[i].fetch(ctx, svc, txs[i], r.cfg.UploadRate)
				}
				times[i] = time.Since(t0).Seconds()
			}()
		}
		wg.Wait()
		res.Seconds = time.Since(start).Seconds()
		if err := errors.Join(errs...); err != nil {
			return res, err
		}
		after, err := svc.stats()
		if err != nil {
			return res, err
		}
		res.ClientSeconds = times
		res.OriginBytes = after.FileBytesSent - before.FileBytesSent
		res.OriginRatio = float64(res.OriginBytes) / float64(fl.Distinct)
		res.P2PShare = 1 - float64(res.OriginBytes)/float64(fl.Delivered)
		if env == nil {
			copy(httpTimes, times)
		} else {
			ratios := make([]float64, n)
			for i := range n {
				ratios[i] = times[i] / httpTimes[i]
			}
			res.RatioHTTPMedian, res.RatioHTTPMax = median(ratios), slices.Max(ratios)
		}
		r.logf("fleet of %d, %s: last host %.1fs, origin %.2fx the distinct bytes, p2p share %.0f%%", n, name, res.Seconds, res.OriginRatio, 100*res.P2PShare)
		return res, stopHosts(hosts)
	}
	if fl.HTTP, err = runOnce("plain HTTP", nil); err != nil {
		return err
	}
	if fl.CrossBatch, err = runOnce("pkgtorrent", []string{"PKGTORRENT_CROSS_BATCH=true"}); err != nil {
		return err
	}
	if fl.PerBatch, err = runOnce("pkgtorrent, one swarm per batch", []string{"PKGTORRENT_CROSS_BATCH=false"}); err != nil {
		return err
	}
	rep.Fleet = &fl
	return nil
}
