package control

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// DefaultAgentUser is the user the agent runs as when started by root. When
// it does not exist, the agent runs as FallbackAgentUser.
const (
	DefaultAgentUser  = "pkgtorrent"
	FallbackAgentUser = "nobody"
)

// agentIdentity is who the agent process runs as; nil credential: as the
// caller (who is not root).
type agentIdentity struct {
	name string
	cred *syscall.Credential
}

// agentUser resolves the user a root caller starts the agent as: name, or
// FallbackAgentUser when name is DefaultAgentUser and does not exist. Any
// other missing user, or one that is root, is an error: the agent never
// runs as root.
func agentUser(name string) (agentIdentity, error) {
	if os.Geteuid() != 0 {
		return agentIdentity{}, nil
	}
	if name == "" {
		name = DefaultAgentUser
	}
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) && name == DefaultAgentUser {
		name = FallbackAgentUser
		u, err = user.Lookup(name)
	}
	if err != nil {
		return agentIdentity{}, fmt.Errorf("agent user %q: %w (create it, e.g. useradd --system %s, or set agent-user)", name, err, name)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return agentIdentity{}, fmt.Errorf("agent user %q has a non-numeric uid or gid", name)
	}
	if uid == 0 {
		return agentIdentity{}, fmt.Errorf("agent user %q is root: the agent never runs as root", name)
	}
	return agentIdentity{name: name, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}, nil
}

// prepareStateDir creates the state directory when missing and, when the
// agent runs as another user, makes that directory (and only it) the agent
// user's, mode 0750, and checks that the agent user can reach it (every
// parent searchable by it).
//
// Root never follows a path the agent user controls: the directory is
// opened without following a symlink and changed through that descriptor,
// and nothing inside it is touched (the agent user owns it and may have
// put anything there).
func prepareStateDir(dir string, id agentIdentity) error {
	if id.cred == nil {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("creating state directory: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return fmt.Errorf("creating parent of state directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating state directory: %w", err)
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening state directory %s (a symlink is refused): %w", dir, err)
	}
	d := os.NewFile(uintptr(fd), dir)
	defer d.Close()
	fi, err := d.Stat()
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	uid, gid := int(id.cred.Uid), int(id.cred.Gid)
	st := fi.Sys().(*syscall.Stat_t)
	switch int(st.Uid) {
	case uid:
	case 0:
		if err := d.Chown(uid, gid); err != nil {
			return fmt.Errorf("giving state directory %s to agent user %s: %w", dir, id.name, err)
		}
		if err := d.Chmod(0o750); err != nil {
			return fmt.Errorf("state directory %s: %w", dir, err)
		}
	default:
		return fmt.Errorf("state directory %s belongs to uid %d, neither root nor agent user %s", dir, st.Uid, id.name)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		ok := mode&0o001 != 0 ||
			(int(st.Uid) == uid && mode&0o100 != 0) ||
			(int(st.Gid) == gid && mode&0o010 != 0)
		if !ok {
			return fmt.Errorf("agent user %s cannot reach state directory %s: %s (mode %v) is not searchable by it", id.name, dir, p, mode)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
