package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pkgtorrent/pkgtorrent/core/api"
	"github.com/pkgtorrent/pkgtorrent/core/control"
	"github.com/pkgtorrent/pkgtorrent/core/fetch"
	"github.com/pkgtorrent/pkgtorrent/core/mirror"
)

// Names of the binaries the benchmark runs.
const (
	getBin     = "pkgtorrent-get"
	agentBin   = control.AgentBinary // started by pkgtorrent-get, from beside it
	serviceBin = "pkgtorrent-service"
)

// BuildBinaries builds pkgtorrent-get, pkgtorrent-agent and pkgtorrent-service with "go build"
// (and any extra build flags) from the module that holds the current
// directory into dir.
func BuildBinaries(ctx context.Context, dir string, flags ...string) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("finding the module: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return fmt.Errorf("the current directory is not inside the pkgtorrent module (go env GOMOD is %q); run from the repository or give prebuilt binaries", mod)
	}
	args := append([]string{"build", "-o", dir + string(os.PathSeparator)}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/"+getBin, "./cmd/"+agentBin, "./cmd/"+serviceBin)...)
	cmd.Dir = filepath.Dir(mod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	return nil
}

// cleanEnv is the environment without pkgtorrent settings, so that the
// benchmark's flags are the only configuration of its processes.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PKGTORRENT_") {
			env = append(env, e)
		}
	}
	return env
}

// serviceProc is a running pkgtorrent-service.
type serviceProc struct {
	cmd    *exec.Cmd
	url    string
	stderr bytes.Buffer
	hc     *http.Client
}

// startService runs pkgtorrent-service over root on a free loopback port.
// rate is its --origin-rate-limit (0: none).
func startService(binDir, root string, rate int64) (*serviceProc, error) {
	cmd := exec.Command(filepath.Join(binDir, serviceBin),
		"--config", os.DevNull, "--root", root, "--listen", "127.0.0.1:0",
		"--origin-rate-limit", strconv.FormatInt(rate, 10))
	cmd.Env = cleanEnv()
	s := &serviceProc{cmd: cmd, hc: &http.Client{Timeout: time.Minute}}
	cmd.Stderr = &s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", serviceBin, err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not start: %v\n%s", serviceBin, err, s.stderr.String())
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "pkgtorrent-service listening on ")
	if !ok {
		s.stop()
		return nil, fmt.Errorf("%s printed %q on start", serviceBin, line)
	}
	s.url = u
	return s, nil
}

func (s *serviceProc) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// stats reads the service's counters.
func (s *serviceProc) stats() (api.Stats, error) {
	st, err := api.GetStats(context.Background(), s.hc, s.url)
	if err != nil {
		return st, fmt.Errorf("service stats: %w", err)
	}
	return st, nil
}

// buildBatch has the service build the torrent of files, as the first
// client of a batch does.
func (s *serviceProc) buildBatch(files []string) error {
	if _, err := api.Torrent(context.Background(), s.hc, s.url, files); err != nil {
		return fmt.Errorf("building a batch: %w", err)
	}
	return nil
}

// fileURL is the service's URL of a repository file.
func (s *serviceProc) fileURL(rel string) string {
	u, err := mirror.FileURL(s.url, rel)
	if err != nil {
		panic(err) // the tree's paths are valid by construction
	}
	return u
}

// host is one client machine: a state directory (its own agent) and an
// output directory.
type host struct {
	binDir string
	state  string
	out    string
	env    []string
}

func newHost(binDir, dir string, env []string) (*host, error) {
	h := &host{binDir: binDir, state: filepath.Join(dir, "state"), out: filepath.Join(dir, "out"), env: append(cleanEnv(), env...)}
	if err := os.MkdirAll(h.out, 0o755); err != nil {
		return nil, err
	}
	return h, nil
}

// getResult is pkgtorrent-get's --json summary with the wall time of the run.
type getResult struct {
	fetch.Result
	Wall float64 `json:"-"`
	// CPU is the CPU seconds (user and system) pkgtorrent-get used.
	CPU float64 `json:"-"`
}

// batchList is pkgtorrent-get's --batch input for files from svc, placed in
// the host's output directory, each with its sha256 as the dnf, yum and
// pacman adapters pass the repository's.
func (h *host) batchList(svc *serviceProc, files []treeFile) string {
	var sb strings.Builder
	for i, f := range files {
		fmt.Fprintf(&sb, "%s %s sha256:%x\n", svc.fileURL(f.Rel), filepath.Join(h.out, strconv.Itoa(i)), f.SHA256)
	}
	return sb.String()
}

// fetch runs pkgtorrent-get --batch on this host and waits for it.
func (h *host) fetch(ctx context.Context, svc *serviceProc, files []treeFile, uploadRate int64) (getResult, error) {
	var r getResult
	cmd := exec.CommandContext(ctx, filepath.Join(h.binDir, getBin),
		"--config", os.DevNull, "--state-dir", h.state, "--service", svc.url,
		"--peer-host", "127.0.0.1", "--seed-time", "30m", "--stall-timeout", "60s",
		"--upload-rate-limit", strconv.FormatInt(uploadRate, 10),
		"--http-fallback=false", "--json", "--quiet", "--batch", "-")
	cmd.Env = h.env
	cmd.Stdin = strings.NewReader(h.batchList(svc, files))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r.Wall = time.Since(start).Seconds()
	if ps := cmd.ProcessState; ps != nil {
		r.CPU = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	if err != nil {
		return r, fmt.Errorf("%s on %s: %v: %s", getBin, h.state, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return r, fmt.Errorf("%s --json printed %q: %w", getBin, stdout.String(), err)
	}
	return r, nil
}

// status is what pkgtorrent-get status reports of the host's agent.
func (h *host) status(ctx context.Context) (control.Status, error) {
	var st control.Status
	cmd := exec.CommandContext(ctx, filepath.Join(h.binDir, getBin), "--config", os.DevNull, "--state-dir", h.state, "status", "--json")
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		return st, fmt.Errorf("%s status on %s: %w", getBin, h.state, err)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("%s status printed %q: %w", getBin, out, err)
	}
	return st, nil
}

// stop stops the host's agent (no agent is not an error).
func (h *host) stop() error {
	cmd := exec.Command(filepath.Join(h.binDir, getBin), "--config", os.DevNull, "--state-dir", h.state, "stop")
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s stop on %s: %v: %s", getBin, h.state, err, out)
	}
	return nil
}

// peakRSS returns a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// cpuSeconds returns the CPU time (user and system) a process and its
// running children have used so far, from /proc/PID/stat: agents of
// earlier versions re-executed themselves, and the bench drives their
// binaries too (--bin-dir).
func cpuSeconds(pid int) (float64, error) {
	own, _, err := procCPU(strconv.Itoa(pid))
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	for _, e := range entries {
		if e.Name()[0] < '1' || e.Name()[0] > '9' {
			continue
		}
		if c, ppid, err := procCPU(e.Name()); err == nil && ppid == pid {
			own += c
		}
	}
	return own, nil
}

// procCPU returns a process's CPU seconds and its parent's PID.
func procCPU(pid string) (float64, int, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("reading CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, 0, fmt.Errorf("cannot parse /proc/%s/stat", pid)
	}
	ppid, err0 := strconv.Atoi(f[1])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("cannot parse /proc/%s/stat", pid)
	}
	return float64(utime+stime) / clockTicks, ppid, nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times
// (100 on Linux for every architecture Go supports).
const clockTicks = 100
