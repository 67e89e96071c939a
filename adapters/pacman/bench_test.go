package pacman

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// The speed targets of the pacman adapter, as benchmarks (run them with
// go test -run '^$' -bench . -benchtime 3x ./adapters/pacman/):
//
//   - BenchmarkXferCommand: one `pacman -S` of 20 small packages through an
//     XferCommand, per-call time of pkgtorrent-get (agent cold: none
//     running; warm: running) against `curl -o %o %u`. Target: median at
//     most 50 ms per package over curl, agent warm.
//   - BenchmarkBatch: the same 20-package transaction through
//     pkgtorrent-pacman (agent cold, or "-warm": running) against pacman's
//     own downloader with ParallelDownloads = 5, one machine (an idle
//     swarm), with the origin unlimited and at 1 MB/s. Target: not slower.
//
// Every iteration is a new machine; its agent is stopped at the end, so the
// next one finds an idle swarm.

// smallPkgs are 20 independent packages of 20 to 60 KB, and a 21st used to
// warm an agent up.
func smallPkgs() []pkg {
	var ps []pkg
	for i := 1; i <= 21; i++ {
		ps = append(ps, pkg{name: fmt.Sprintf("small%02d", i), version: "1.0-1", size: 20_000 + 2_000*i})
	}
	return ps
}

func targets(ps []pkg) []string {
	var names []string
	for _, p := range ps {
		names = append(names, p.name)
	}
	return names
}

// timedXfer is an XferCommand wrapper that runs cmd (a bash command line
// in which $1 is %u and $2 is %o) and logs its duration in nanoseconds,
// exit status and URL.
func timedXfer(t testing.TB, dir, cmd string) string {
	p := filepath.Join(dir, "timed-xfer")
	log := filepath.Join(dir, "timed.log")
	write(t, p, []byte(fmt.Sprintf("#!/bin/bash\ns=$(date +%%s%%N)\n%s\nrc=$?\ne=$(date +%%s%%N)\necho \"$((e-s)) $rc $1\" >> %s\nexit $rc\n", cmd, log)))
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p + " %u %o"
}

// callTimes reads the package calls of a timed log, in milliseconds.
func callTimes(t testing.TB, dir string) []float64 {
	b, err := os.ReadFile(filepath.Join(dir, "timed.log"))
	if err != nil {
		t.Fatal(err)
	}
	var ms []float64
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != "0" {
			t.Fatalf("XferCommand call %q failed", l)
		}
		if strings.HasSuffix(f[2], ".pkg.tar.zst") {
			ns, _ := strconv.ParseFloat(f[0], 64)
			ms = append(ms, ns/1e6)
		}
	}
	return ms
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	return v[len(v)/2]
}

func BenchmarkXferCommand(b *testing.B) {
	needTools(b, append(pacmanTools, "curl")...)
	ps := smallPkgs()
	rp := buildRepo(b, 10, ps)
	svc := startService(b, rp.root)
	servers := []string{svc.url + "$repo/os/$arch"}
	want := targets(ps[:20])
	get, _ := testkit.Binaries(b)
	for _, mode := range []string{"curl", "cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			var per []float64
			var wall time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r := newRoot(b, servers, "", getConf(svc.url, "quiet = true"))
				cmd := `/usr/bin/curl -sSf -o "$2" "$1"`
				if mode != "curl" {
					cmd = get + " --config " + r.getConf + ` "$1" "$2"`
				}
				// The timed wrapper replaces the XferCommand line.
				conf, _ := os.ReadFile(r.conf)
				line := "XferCommand = " + timedXfer(b, r.dir, cmd) + "\n"
				write(b, r.conf, []byte(strings.Replace(string(conf), "\n[core]", line+"\n[core]", 1)))
				if mode == "warm" {
					out := filepath.Join(b.TempDir(), ps[20].fileName())
					if res := r.exec(get, "--config", r.getConf, svc.url+"core/os/"+repoArch+"/"+ps[20].fileName(), out); res.code != 0 {
						b.Fatalf("warm-up: %s", res.stderr)
					}
				}
				b.StartTimer()
				start := time.Now()
				res := r.pacman(append([]string{"-Sy", "--noconfirm"}, want...)...)
				wall += time.Since(start)
				b.StopTimer()
				if res.code != 0 {
					b.Fatalf("pacman: exit %d\n%s", res.code, res.stderr)
				}
				r.checkInstalled(rp, ps[:20])
				per = append(per, callTimes(b, r.dir)...)
				r.host.Stop() // an idle swarm for the next iteration
			}
			b.ReportMetric(median(per), "ms/pkg-median")
			b.ReportMetric(wall.Seconds()/float64(b.N), "s/transaction")
		})
	}
}

func BenchmarkBatch(b *testing.B) {
	needTools(b, pacmanTools...)
	all := smallPkgs()
	rp := buildRepo(b, 11, all)
	// Loopback without a limit shows the fixed costs; an origin of 1 MB/s
	// (all clients together, plain GETs and webseed alike) is closer to a
	// real mirror.
	for _, limit := range []string{"0", "1000000"} {
		svc := startService(b, rp.root, "--origin-rate-limit", limit)
		servers := []string{svc.url + "$repo/os/$arch"}
		for _, mode := range []string{"pacman-parallel5", "pkgtorrent-pacman", "pkgtorrent-pacman-warm", "pkgtorrent-pacman-peer"} {
			b.Run("origin-limit="+limit+"/"+mode, func(b *testing.B) {
				benchBatch(b, rp, all, servers, svc, mode)
			})
		}
	}
}

// benchBatch installs all but the last of all; "-warm" has an agent running
// (it fetched the last one) before the transaction starts; "-peer" has
// another host, which ran the same transaction, seeding the packages.
func benchBatch(b *testing.B, rp repo, all []pkg, servers []string, svc service, mode string) {
	ps := all[:len(all)-1]
	get, _ := testkit.Binaries(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRoot(b, servers, "", getConf(svc.url, "quiet = true"))
		conf, _ := os.ReadFile(r.conf)
		write(b, r.conf, []byte(strings.Replace(string(conf), "\n[core]", "ParallelDownloads = 5\n\n[core]", 1)))
		args := append([]string{"-Sy", "--noconfirm"}, targets(ps)...)
		if mode == "pkgtorrent-pacman-warm" {
			last := all[len(all)-1].fileName()
			if res := r.exec(get, "--config", r.getConf, svc.url+"core/os/"+repoArch+"/"+last, filepath.Join(b.TempDir(), last)); res.code != 0 {
				b.Fatalf("warm-up: %s", res.stderr)
			}
		}
		var peer *pacRoot
		if mode == "pkgtorrent-pacman-peer" {
			peer = newRoot(b, servers, "", getConf(svc.url, "quiet = true"))
			if res := peer.batch(args...); res.code != 0 {
				b.Fatalf("peer: exit %d\n%s", res.code, res.stderr)
			}
		}
		b.StartTimer()
		var res run
		if strings.HasPrefix(mode, "pkgtorrent-pacman") {
			res = r.batch(args...)
		} else {
			res = r.pacman(args...)
		}
		b.StopTimer()
		if res.code != 0 {
			b.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
		r.checkInstalled(rp, ps)
		if peer != nil {
			if st := r.host.Status(); st == nil || st["from_peers"] == 0 {
				b.Fatalf("the host took nothing from its peer: %v", st)
			}
			peer.host.Stop()
		}
		r.host.Stop()
		if mode != "pacman-parallel5" && strings.Contains(res.stderr, "pkgtorrent-pacman:") {
			b.Fatalf("the batch did not go through:\n%s", res.stderr)
		}
	}
}
