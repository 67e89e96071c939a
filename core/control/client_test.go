package control

import (
	"context"
	"errors"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// fakeAgentEnv makes the test binary a stand-in agent (TestMain): it
// records whether Connect offered it a readiness descriptor, listens on the
// socket of the state directory the variable names, says so (Ready) and
// accepts one connection.
const fakeAgentEnv = "PKGTORRENT_TEST_FAKE_AGENT"

func TestMain(m *testing.M) {
	if dir := os.Getenv(fakeAgentEnv); dir != "" {
		os.WriteFile(filepath.Join(dir, "offered"), []byte(os.Getenv(ReadyFDEnv)), 0o644)
		ln, err := net.Listen("unix", SocketPath(dir))
		if err != nil {
			os.Exit(1)
		}
		Ready()
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Connect starts the agent with a descriptor to say it listens on, and
// connects once it does.
func TestConnectStartsAgent(t *testing.T) {
	dir := t.TempDir()
	bin := os.Args[0]
	if os.Geteuid() == 0 {
		// The agent runs as the agent user: it must reach its state
		// directory and its program.
		if _, err := user.Lookup(DefaultAgentUser); err != nil {
			t.Skipf("no agent user %s: %v", DefaultAgentUser, err)
		}
		if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(filepath.Dir(dir), "fake-agent")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(fakeAgentEnv, dir)
	c, err := Connect(context.Background(), dir, Launch{Command: []string{bin}}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "offered")); string(b) != "3" {
		t.Errorf("the agent was offered readiness descriptor %q, want 3", b)
	}
}

// Ready writes one byte on the descriptor and forgets the variable.
func TestReady(t *testing.T) {
	// Raw descriptors: Ready closes the write end, which no *os.File may
	// then close again.
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(p[0]), "ready")
	defer r.Close()
	t.Setenv(ReadyFDEnv, strconv.Itoa(p[1]))
	Ready()
	if v, ok := os.LookupEnv(ReadyFDEnv); ok {
		t.Errorf("%s still set (%q)", ReadyFDEnv, v)
	}
	b := make([]byte, 2)
	n, _ := r.Read(b)
	if n != 1 {
		t.Fatalf("read %d bytes, want 1", n)
	}
	if n, err := r.Read(b); n != 0 || err == nil {
		t.Errorf("after the byte: %d bytes, %v; want end of file (descriptor closed)", n, err)
	}
}

// BenchmarkConnectStartsAgent: Connect with no agent running, to a
// stand-in agent that listens as soon as it runs (the agent's own start
// comes on top).
func BenchmarkConnectStartsAgent(b *testing.B) {
	if os.Geteuid() == 0 {
		b.Skip("run as a user: as root the stand-in must be copied for the agent user")
	}
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		b.Setenv(fakeAgentEnv, dir)
		c, err := Connect(context.Background(), dir, Launch{Command: []string{os.Args[0]}}, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// Connect looks for the agent program only when it must start one: a
// running agent serves a client whose agent program is missing (e.g. in
// the middle of an upgrade), and with none running the lookup's error is
// the one reported.
func TestConnectLocatesOnlyToStart(t *testing.T) {
	dir := t.TempDir()
	missing := errors.New("no pkgtorrent-agent here")
	located := 0
	l := Launch{Command: []string{AgentBinary}, Locate: func() (string, error) {
		located++
		return "", missing
	}}
	if _, err := Connect(context.Background(), dir, l, 2*time.Second); !errors.Is(err, missing) {
		t.Fatalf("no agent running: Connect = %v, want the lookup's error", err)
	}
	ln, err := net.Listen("unix", SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	located = 0
	c, err := Connect(context.Background(), dir, l, 2*time.Second)
	if err != nil {
		t.Fatalf("an agent running: %v", err)
	}
	c.Close()
	if located != 0 {
		t.Errorf("the agent program was looked up %d times with an agent running", located)
	}
}
