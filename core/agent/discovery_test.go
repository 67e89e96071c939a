package agent

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/anacrolix/torrent"
)

// lsdChild marks the test process that runs inside the test's own network
// namespace.
const lsdChild = "PKGTORRENT_TEST_LSD_CHILD"

// With local discovery (BEP 14), two engines with the agent's settings and
// no tracker find each other by multicast and the leecher gets the torrent
// from the seeder. Multicast leaves the machine on its real interfaces, so
// the test runs in a network namespace of its own, where the only
// interface is a loopback with multicast on.
func TestLocalDiscovery(t *testing.T) {
	if os.Getenv(lsdChild) == "" {
		if os.Geteuid() != 0 {
			t.Skip("a network namespace needs root")
		}
		ip, err := exec.LookPath("ip")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("ip (iproute2) is not installed")
			}
			t.Skip(err)
		}
		ns := fmt.Sprintf("pkgtorrent-lsd-%d", os.Getpid())
		run := func(args ...string) {
			if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v\n%s", args, err, out)
			}
		}
		run("netns", "add", ns)
		t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
		run("netns", "exec", ns, ip, "link", "set", "lo", "up")
		run("netns", "exec", ns, ip, "link", "set", "lo", "multicast", "on")
		run("netns", "exec", ns, ip, "route", "add", "239.0.0.0/8", "dev", "lo")
		cmd := exec.Command(ip, "netns", "exec", ns, os.Args[0], "-test.run", "^TestLocalDiscovery$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), lsdChild+"=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("in network namespace %s: %v\n%s", ns, err, out)
		}
		return
	}
	const size = 1 << 20
	seedDir := t.TempDir()
	mi := seedTorrent(t, seedDir, size)
	lsd := func(cfg *torrent.ClientConfig) *torrent.ClientConfig {
		cfg.LocalServiceDiscovery = &torrent.LocalServiceDiscoveryConfig{}
		cfg.Bep20 = "-PK0001-"
		return cfg
	}
	scfg := lsd(engineConfig(t))
	scfg.DataDir = seedDir
	_, st := addTorrent(t, scfg, mi)
	seeding(t, st)
	_, lt := addTorrent(t, lsd(engineConfig(t)), mi)
	lt.DownloadAll()
	waitFor(t, "the leecher to find the seeder by multicast and download", lt.Complete().Bool)
	stats := lt.Stats()
	if got := stats.PeerConns.BytesReadUsefulData.Int64(); got != size {
		t.Errorf("%d bytes from the peer, want %d", got, size)
	}
	sameData(t, lt, seedDir)
}
