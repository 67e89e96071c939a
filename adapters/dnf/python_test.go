package dnf

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

// TestPythonTests runs the plugins' Python unit tests: the shared batch
// module (../common) and the yum plugin against its stand-in conduit
// (../yum), the latter with the real pkgtorrent-get and service. Debian's
// Python 3 always; a Python 2.7 on PATH too (yum 3 runs on Python 2), when
// there is one (Debian 12 has none).
func TestPythonTests(t *testing.T) {
	setup(t)
	svc := testkit.StartService(t, shared.tree)
	pythons := []string{dnfPython}
	if p, err := exec.LookPath("python2.7"); err == nil && exec.Command(p, "-c", "pass").Run() == nil {
		pythons = append(pythons, p)
	} else {
		t.Log("no working python2.7 on PATH: the Python tests run under Python 3 only")
	}
	for _, py := range pythons {
		for _, dir := range []string{"../common", "../yum"} {
			out := pythonTests(t, py, dir, "PT_TEST_GET="+shared.get, "PT_TEST_SERVICE="+svc,
				"PT_TEST_REPO="+filepath.Join(shared.tree, "el"))
			t.Logf("%s %s: %s", py, dir, lastLine(out))
		}
	}
}

// pythonTests runs the unit tests in dir with py and the environment env,
// and returns their output. Of the yum tests, only those of the installed
// plugin (without PT_TEST_PLUGIN_DIR) may skip.
func pythonTests(t *testing.T, py, dir string, env ...string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-m", "unittest", "discover", "-v", "-s", abs, "-p", "test_*.py")
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(testkit.CleanEnv(), "PYTHONDONTWRITEBYTECODE=1"), env...)
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("%s unittest %s: %v\n%s", py, dir, err, out)
	}
	if dir == "../yum" {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "... skipped") && !strings.Contains(l, "PT_TEST_PLUGIN_DIR not set") {
				t.Fatalf("%s: yum tests skipped:\n%s", py, out)
			}
		}
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
