package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func goTool(t *testing.T) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skip("no go command to build the binary with")
	}
	return p
}

func TestBinaryServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pkgtorrent-service")
	build := exec.Command(goTool(t), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "pkgs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "pkgs", "hello.rpm"), []byte("hello, mirror"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "service.conf")
	if err := os.WriteFile(conf, []byte("listen = \"127.0.0.1:1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "--config", conf, "--listen", "127.0.0.1:0", "--root", root)
	cmd.Env = append(os.Environ(), "PKGTORRENT_SERVICE_MAX_FILES=10")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit after SIGTERM: %v", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Error("no exit within 15s of SIGTERM")
		}
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("no output within 30s")
	}
	url, ok := strings.CutPrefix(line, "pkgtorrent-service listening on ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0/") {
		t.Fatalf("first line %q", line)
	}
	resp, err := http.Get(url + "pkgs/hello.rpm")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello, mirror" {
		t.Errorf("GET file: %d %q", resp.StatusCode, body)
	}
}

func TestMissingExplicitConfig(t *testing.T) {
	err := run(t.Context(), []string{"--config", filepath.Join(t.TempDir(), "none"), "--root", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("missing --config file: %v", err)
	}
}

// The bounds of issue 12 are settings: accepted in the file and checked.
func TestBoundsSettings(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "service.conf")
	keys := "write-timeout = \"30s\"\nidle-timeout = \"1m\"\nmax-builds = 3\nhash-cache-bytes = 1000000\n"
	if err := os.WriteFile(conf, []byte(keys), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // serve nothing: only the settings are checked
	args := []string{"--config", conf, "--root", dir, "--listen", "127.0.0.1:0"}
	if err := run(ctx, args, io.Discard, io.Discard); err != nil {
		t.Errorf("config with the bounds keys: %v", err)
	}
	err := run(ctx, append(args, "--max-builds", "-1"), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "max builds") {
		t.Errorf("--max-builds -1: %v", err)
	}
	t.Setenv("PKGTORRENT_SERVICE_HASH_CACHE_BYTES", "-5")
	err = run(ctx, args, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "hash cache") {
		t.Errorf("PKGTORRENT_SERVICE_HASH_CACHE_BYTES=-5: %v", err)
	}
}
