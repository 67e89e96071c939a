package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func flags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("root", "/default", "")
	fs.String("listen", "127.0.0.1:7070", "")
	fs.Int64("origin-rate-limit", 0, "")
	fs.StringSlice("mirror", nil, "")
	fs.Duration("tracker-interval", 0, "")
	return fs
}

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const conf = `
root = "/from/file"
listen = "127.0.0.1:1111"
origin-rate-limit = 1000
mirror = ["http://file.example/"]
tracker-interval = "30s"
`

func TestPrecedence(t *testing.T) {
	path := writeConf(t, conf)
	t.Setenv("PKGTEST_LISTEN", "127.0.0.1:2222")
	t.Setenv("PKGTEST_ORIGIN_RATE_LIMIT", "2000")
	t.Setenv("PKGTEST_MIRROR", "http://env1.example/, http://env2.example/")
	t.Setenv("PKGTEST_UNKNOWN_THING", "ignored")
	t.Setenv("PKGTESTOTHER_ROOT", "/not/ours")

	fs := flags()
	if err := fs.Parse([]string{"--origin-rate-limit", "3000"}); err != nil {
		t.Fatal(err)
	}
	k, err := Load(fs, path, true, "PKGTEST_")
	if err != nil {
		t.Fatal(err)
	}
	if got := k.String("root"); got != "/from/file" {
		t.Errorf("root = %q, want the file's", got)
	}
	if got := k.String("listen"); got != "127.0.0.1:2222" {
		t.Errorf("listen = %q, want the environment's (env overrides file)", got)
	}
	if got := k.Int64("origin-rate-limit"); got != 3000 {
		t.Errorf("origin-rate-limit = %d, want the flag's (flag overrides env)", got)
	}
	if got := k.Strings("mirror"); !slices.Equal(got, []string{"http://env1.example/", "http://env2.example/"}) {
		t.Errorf("mirror = %q, want the environment's list", got)
	}
	if got := k.Duration("tracker-interval"); got.Seconds() != 30 {
		t.Errorf("tracker-interval = %v, want 30s", got)
	}
}

func TestDefaultsAndMissingFile(t *testing.T) {
	fs := flags()
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none.toml")
	k, err := Load(fs, missing, false, "PKGTEST_")
	if err != nil {
		t.Fatalf("missing default config file: %v", err)
	}
	if got := k.String("root"); got != "/default" {
		t.Errorf("root = %q, want the flag default", got)
	}
	if _, err := Load(flags(), missing, true, "PKGTEST_"); err == nil {
		t.Error("a missing explicit config file was not an error")
	}
}

func TestBadValues(t *testing.T) {
	if _, err := Load(flags(), writeConf(t, `rooot = "/typo"`), true, ""); err == nil || !strings.Contains(err.Error(), "rooot") {
		t.Errorf("unknown file key: %v", err)
	}
	t.Setenv("PKGTEST_ORIGIN_RATE_LIMIT", "fast")
	if _, err := Load(flags(), "", false, "PKGTEST_"); err == nil || !strings.Contains(err.Error(), "origin-rate-limit") {
		t.Errorf("bad environment number: %v", err)
	}
}
