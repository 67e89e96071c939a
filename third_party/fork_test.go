package thirdparty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite torrent/pkgtorrent.diff as the difference between the upstream module and torrent/")

const (
	// forkModule is the module go.mod replaces with forkDir.
	forkModule = "github.com/anacrolix/torrent"
	forkDir    = "torrent"
	forkDiff   = "pkgtorrent.diff"
)

// forkOwn are the files of forkDir that are pkgtorrent's, not upstream's.
var forkOwn = []string{"PKGTORRENT.md", forkDiff}

// forkRequired are upstream files forkDir must keep: the module's go.mod,
// and its LICENSE, which the patched files stay under.
var forkRequired = []string{"go.mod", "LICENSE"}

// TestTorrentFork checks that torrent/ is the upstream module at the version
// go.mod requires plus pkgtorrent.diff, byte for byte: it copies upstream's
// version of each file of torrent/ (but forkOwn) into a temporary directory,
// applies the diff there with git apply and compares the result with
// torrent/. A file of torrent/ that is neither upstream's, nor created by
// the diff, nor in forkOwn fails it too, and so does a missing forkRequired
// file.
//
// With -update, it first rewrites pkgtorrent.diff from upstream and torrent/.
func TestTorrentFork(t *testing.T) {
	goTool := findGo(t)
	version := replacedVersion(t, goTool)
	upstream := downloadModule(t, goTool, forkModule+"@"+version)
	label := forkModule + " " + version

	files, err := listFiles(forkDir)
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return slices.Contains(forkOwn, f) })
	var fromUpstream []string
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(upstream, filepath.FromSlash(f))); err == nil {
			fromUpstream = append(fromUpstream, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}

	tmp := t.TempDir()
	rebuilt := filepath.Join(tmp, "a")
	if err := copyFiles(upstream, rebuilt, fromUpstream); err != nil {
		t.Fatal(err)
	}
	diffPath := filepath.Join(forkDir, forkDiff)

	if *update {
		if err := copyFiles(forkDir, filepath.Join(tmp, "b"), files); err != nil {
			t.Fatal(err)
		}
		// --no-prefix on directories a and b gives a/FILE and b/FILE: a
		// patch for -p1 (git apply, patch -p1).
		out, err := runGit(tmp, nil, "diff", "--no-index", "--no-color", "--no-ext-diff", "--no-textconv",
			"--no-renames", "--diff-algorithm=myers", "--no-prefix", "a", "b")
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
			t.Fatalf("git diff: %v\n%s", err, out)
		}
		if err := os.WriteFile(diffPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes) against %s", diffPath, len(out), label)
	}

	patch, err := os.ReadFile(diffPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(bytes.TrimSpace(patch)) > 0 {
		if out, err := runGit(rebuilt, patch, "apply", "-p1", "--whitespace=nowarn", "-"); err != nil {
			t.Fatalf("third_party/%s/%s does not apply to %s (from the module cache, %s): %v\n%s",
				forkDir, forkDiff, label, upstream, err, out)
		}
	}
	got, err := listFiles(rebuilt)
	if err != nil {
		t.Fatal(err)
	}

	var problems, differing []string
	for _, f := range files {
		if !slices.Contains(got, f) {
			if slices.Contains(fromUpstream, f) {
				problems = append(problems, f+": pkgtorrent.diff deletes it")
			} else {
				problems = append(problems, fmt.Sprintf("%s: neither in %s, nor created by %s, nor pkgtorrent's own (%s)",
					f, label, forkDiff, strings.Join(forkOwn, ", ")))
			}
			continue
		}
		want, err := os.ReadFile(filepath.Join(rebuilt, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Join(forkDir, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, have) {
			problems = append(problems, f+": differs from upstream plus "+forkDiff)
			differing = append(differing, f)
		}
	}
	for _, f := range forkRequired {
		if !slices.Contains(files, f) {
			problems = append(problems, f+": missing (upstream's is required)")
		}
	}
	for _, f := range got {
		if !slices.Contains(files, f) {
			problems = append(problems, f+": created by "+forkDiff+" but missing")
		}
	}
	if len(problems) == 0 {
		return
	}

	var msg strings.Builder
	fmt.Fprintf(&msg, "third_party/%s is not %s (module cache: %s) plus third_party/%s/%s:\n",
		forkDir, label, upstream, forkDir, forkDiff)
	for _, p := range problems {
		fmt.Fprintf(&msg, "\t%s/%s\n", forkDir, p)
	}
	// What upstream plus the diff has (a/) against what the copy has (b/).
	if err := copyFiles(forkDir, filepath.Join(tmp, "b"), differing); err != nil {
		t.Fatal(err)
	}
	const maxShown = 8 << 10
	var shown []byte
	for _, f := range differing {
		out, _ := runGit(tmp, nil, "diff", "--no-index", "--no-color", "--no-ext-diff", "--no-textconv",
			"--no-prefix", "a/"+f, "b/"+f)
		shown = append(shown, out...)
	}
	if len(shown) > 0 {
		fmt.Fprintf(&msg, "a/ is upstream plus the diff, b/ is third_party/%s:\n", forkDir)
		if len(shown) > maxShown {
			shown = append(shown[:maxShown], "\n(more left out)\n"...)
		}
		msg.Write(shown)
	}
	fmt.Fprintf(&msg, "If the change to third_party/%s is meant, regenerate the diff with\n"+
		"\tgo test ./third_party -run TestTorrentFork -update\n"+
		"and say why in third_party/%s/PKGTORRENT.md.", forkDir, forkDir)
	t.Error(msg.String())
}

// findGo returns the go command.
func findGo(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatal("no go command to fetch the upstream module with")
	}
	return p
}

// replacedVersion returns the version of forkModule go.mod requires, after
// checking that go.mod replaces it with forkDir.
func replacedVersion(t *testing.T, goTool string) string {
	t.Helper()
	out := goCommand(t, goTool, "", "list", "-m", "-json", forkModule)
	var m struct {
		Version string
		Replace *struct{ Dir string }
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("go list -m -json %s: %v\n%s", forkModule, err, out)
	}
	dir, err := filepath.Abs(forkDir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Replace == nil || filepath.Clean(m.Replace.Dir) != dir {
		t.Fatalf("go.mod does not replace %s with third_party/%s", forkModule, forkDir)
	}
	if m.Version == "" {
		t.Fatalf("go.mod requires no version of %s", forkModule)
	}
	return m.Version
}

// downloadModule fetches a module version into the module cache (from the
// module proxy when it is not there, verified with the checksum database) and
// returns its directory there. It runs outside the main module, which stays
// untouched.
func downloadModule(t *testing.T, goTool, query string) string {
	t.Helper()
	out := goCommand(t, goTool, t.TempDir(), "mod", "download", "-json", query)
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Error != "" || m.Dir == "" {
		t.Fatalf("go mod download %s: %v %s\n%s", query, err, m.Error, out)
	}
	return m.Dir
}

func goCommand(t *testing.T, goTool, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, goTool, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// runGit runs git in dir, outside any repository and without the user's or
// the system's configuration, and returns its combined output.
func runGit(dir string, stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "git", append([]string{"-c", "core.abbrev=7", "-c", "core.quotePath=false"}, args...)...)
	c.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			c.Env = append(c.Env, kv)
		}
	}
	c.Env = append(c.Env, "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull)
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	return c.CombinedOutput()
}

// listFiles returns the files under root, slash-separated and relative to
// it, sorted. Anything but directories and regular files is an error.
func listFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	slices.Sort(files)
	return files, err
}

// copyFiles copies files (relative to from) to the same paths under to, as
// writable files (the module cache's are read-only).
func copyFiles(from, to string, files []string) error {
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(from, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		dst := filepath.Join(to, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(to, 0o755)
}
