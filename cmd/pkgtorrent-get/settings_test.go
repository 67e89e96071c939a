package main

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/config"
	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/core/fetch"
)

// The agent's settings cross one process boundary as options: every field
// of control.Settings survives Args and the parsing of pkgtorrent-get's
// flags (its agent subcommand) and of pkgtorrent-agent's, and the flags'
// defaults are control.Defaults.
func TestAgentSettingsRoundTrip(t *testing.T) {
	want := control.Settings{
		StateDir:          "/var/cache/x",
		SeedTime:          7 * time.Minute,
		PeerGrace:         3 * time.Second,
		WebseedIdlePieces: true,
		WebseedCatchUp:    true,
		CrossBatch:        true,
		LocalDiscovery:    true,
		PeerHost:          "127.0.0.1",
		PeerPort:          6881,
		UploadRateLimit:   1000,
		DownloadRateLimit: 2000,
		MaxDisk:           3000,
		MaxCPUs:           2,
		MetricsListen:     "127.0.0.1:9477",
		LogLevel:          "debug",
		Service:           "http://127.0.0.1:7070/",
		Mirrors:           []string{"http://a/", "http://b/"},
	}
	v := reflect.ValueOf(want)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("set %s in this test: every setting must cross", v.Type().Field(i).Name)
		}
	}
	parse := func(args []string) control.Settings {
		fs := flags()
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		k, err := config.Load(fs, "/dev/null", true, "PKGTORRENT_NO_SUCH_PREFIX_")
		if err != nil {
			t.Fatal(err)
		}
		return agentSettings(k, k.String("state-dir"))
	}
	if got := parse(append([]string{"agent"}, want.Args()...)); !reflect.DeepEqual(got, want) {
		t.Errorf("after Args and parsing:\n got %+v\nwant %+v", got, want)
	}
	// What pkgtorrent-agent parses.
	if got, err := control.ParseArgs(want.Args()); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("after Args and control.ParseArgs (%v):\n got %+v\nwant %+v", err, got, want)
	}
	d := control.Defaults
	got := parse([]string{"--state-dir", "/s"})
	got.StateDir, d.StateDir = "", ""
	got.Mirrors = nil
	if !reflect.DeepEqual(got, d) {
		t.Errorf("flag defaults:\n got %+v\nwant %+v", got, d)
	}
}

// The plugin configurations state pkgtorrent-get's default timeouts in
// their comments (the plugins pass a timeout only when their own
// configuration sets it): the figures there are the flags' defaults.
func TestPluginConfDefaults(t *testing.T) {
	re := regexp.MustCompile(`else (\d+)\s*(?:#\s*)?and (\d+)\)`)
	for _, conf := range []string{"../../adapters/dnf/pkgtorrent.conf", "../../adapters/yum/pkgtorrent.conf"} {
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindSubmatch(b)
		if m == nil {
			t.Errorf("%s does not state the default timeouts (\"else N and M)\")", conf)
			continue
		}
		want := []string{fmt.Sprint(int(fetch.DefaultConnectTimeout.Seconds())), fmt.Sprint(int(fetch.DefaultStallTimeout.Seconds()))}
		if got := []string{string(m[1]), string(m[2])}; !slices.Equal(got, want) {
			t.Errorf("%s states default timeouts %v, the flags' are %v", conf, got, want)
		}
	}
}
