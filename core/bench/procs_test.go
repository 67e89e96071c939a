package bench

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuSeconds counts a process's running children: the CPU a child spent
// (a shell's busy loop, then exec sleep, which keeps the times) is in the
// parent's figure.
func TestCPUSecondsCountsChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	child := strconv.Itoa(cmd.Process.Pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + child + "/comm")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child's loop did not end")
		}
		time.Sleep(20 * time.Millisecond)
	}
	childCPU, ppid, err := procCPU(child)
	if err != nil || ppid != os.Getpid() {
		t.Fatalf("procCPU(child) = %v, ppid %d (want %d), %v", childCPU, ppid, os.Getpid(), err)
	}
	if childCPU == 0 {
		t.Skip("the child's loop took less than a clock tick")
	}
	own, _, err := procCPU(strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	all, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if all < own+childCPU {
		t.Errorf("cpuSeconds = %v, want at least own %v + child %v", all, own, childCPU)
	}
}
