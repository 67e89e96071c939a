package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Launch says how to start an agent when none runs.
type Launch struct {
	// Command is the agent's program and arguments (for pkgtorrent-get:
	// pkgtorrent-agent and Settings.Args); empty: never start one.
	Command []string
	// Locate, if set, returns the program to run in place of Command[0].
	// It is called only when an agent must be started: a missing agent
	// program does not stop a client from using an agent that runs.
	Locate func() (string, error)
	// User is the user the agent runs as when the caller is root
	// (DefaultAgentUser if empty; see agentUser).
	User string
}

// Connect connects to the agent of stateDir, starting one with l when none
// runs, within timeout.
func Connect(ctx context.Context, stateDir string, l Launch, timeout time.Duration) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c, err := Dial(ctx, stateDir); err == nil {
		return c, nil
	}
	if len(l.Command) == 0 {
		return nil, errors.New("no agent running and no command to start one")
	}
	argv := append([]string(nil), l.Command...)
	if l.Locate != nil {
		exe, err := l.Locate()
		if err != nil {
			return nil, fmt.Errorf("no agent running, and none to start: %w", err)
		}
		argv[0] = exe
	}
	id, err := agentUser(l.User)
	if err != nil {
		return nil, err
	}
	if err := prepareStateDir(stateDir, id); err != nil {
		return nil, err
	}
	// The agent opens its log itself (as the agent user): root opens
	// nothing in a directory the agent user controls.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: id.cred}
	// The agent says on a pipe when its socket listens (see Ready): no
	// polling for the socket while it starts.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting agent: %w", err)
	}
	defer readyR.Close()
	cmd.ExtraFiles = []*os.File{readyW} // fd 3
	cmd.Env = append(os.Environ(), ReadyFDEnv+"=3")
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("starting agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		// A byte: listening; end of file: the agent closed the pipe
		// without (it exited, e.g. another agent won the race for the
		// state directory). Either way, time to dial.
		readyR.Read(make([]byte, 1))
		close(ready)
	}()
	// In case the agent cannot tell (an older one): dial now and then.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := Dial(ctx, stateDir); err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("agent did not start within %s (see %s)", timeout, filepath.Join(stateDir, LogName))
		case <-ready:
			ready = nil
		case <-exited:
			// Another agent may have won the race for the state directory.
			if c, err := Dial(ctx, stateDir); err == nil {
				return c, nil
			}
			exited = nil
		case <-tick.C:
		}
	}
}

// ReadyFDEnv names the environment variable by which Connect gives the agent
// it starts the number of a descriptor to tell it is listening on (Ready).
const ReadyFDEnv = "PKGTORRENT_READY_FD"

// Ready tells the process that started this agent (Connect) that the agent
// listens on its socket: a byte on the descriptor ReadyFDEnv names, which is
// then closed and forgotten. Nothing happens without the variable.
func Ready() {
	v := os.Getenv(ReadyFDEnv)
	if v == "" {
		return
	}
	os.Unsetenv(ReadyFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	f.Write([]byte{1})
	f.Close()
}

// Stop asks the agent of stateDir to exit; no agent running is not an error.
func Stop(ctx context.Context, stateDir string) error {
	c, err := Dial(ctx, stateDir)
	if err != nil {
		return nil
	}
	defer c.Close()
	if err := c.Send(Request{Op: "stop"}); err != nil {
		return err
	}
	if _, err := c.Recv(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	// Wait until the agent has let go of its socket.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(SocketPath(stateDir)); err != nil {
			return nil
		}
	}
	return errors.New("agent did not stop within 5s")
}

// MetricsOf asks the agent of stateDir for its Prometheus metrics (text
// format).
func MetricsOf(ctx context.Context, stateDir string) (string, error) {
	c, err := Dial(ctx, stateDir)
	if err != nil {
		return "", fmt.Errorf("no agent running for %s", stateDir)
	}
	defer c.Close()
	if err := c.Send(Request{Op: "metrics"}); err != nil {
		return "", err
	}
	rep, err := c.Recv(time.Now().Add(5 * time.Second))
	if err != nil {
		return "", err
	}
	return rep.Metrics, nil
}

// StatusOf asks the agent of stateDir for its status.
func StatusOf(ctx context.Context, stateDir string) (*Status, error) {
	c, err := Dial(ctx, stateDir)
	if err != nil {
		return nil, fmt.Errorf("no agent running for %s", stateDir)
	}
	defer c.Close()
	if err := c.Send(Request{Op: "status"}); err != nil {
		return nil, err
	}
	rep, err := c.Recv(time.Now().Add(5 * time.Second))
	if err != nil {
		return nil, err
	}
	return rep.Status, nil
}
