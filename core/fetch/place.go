package fetch

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/pkgtorrent/pkgtorrent/core/torrentfile"
)

// expect is what a placed file must match.
type expect struct {
	size   int64
	pieces []byte // piece hashes, last one unpadded when tail
	tail   bool   // the file is last in its torrent: its last piece is unpadded
	sha256 []byte
}

// source is where the agent keeps a file's content: in the data file at
// path (a pack holds many contents), from offset on, for the file's size.
type source struct {
	path   string
	offset int64
}

// place puts a verified copy of the agent's data src at out: copied
// to a temporary name beside out and checked in the same pass, then
// renamed. out is replaced, never followed if it is a symlink; on error
// nothing is left behind.
//
// The placed file is always a copy, never a link: the agent (another user
// when the caller is root, the store of a long-running agent otherwise) can
// rewrite its data file after it was verified, and a placed file never
// changes. src's data file is opened beneath stateDir without following symlinks (see
// openData).
func place(stateDir string, src source, out string, want expect) (err error) {
	dir, base := filepath.Split(out)
	if dir == "" {
		dir = "."
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+base+".pkgtorrent-"+hex.EncodeToString(rnd[:]))
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if src.offset < 0 {
		return fmt.Errorf("agent data %s: offset %d", src.path, src.offset)
	}
	// An empty file has no data to read (the agent may have no data file
	// for it at all).
	var content io.Reader = bytes.NewReader(nil)
	if want.size > 0 {
		in, err := openData(stateDir, src.path)
		if err != nil {
			return err
		}
		defer in.Close()
		content = io.NewSectionReader(in, src.offset, want.size)
	}
	if err := copyVerified(content, tmp, want); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("placing %s: %w", out, err)
	}
	return nil
}

// openData opens the agent's data file src, which must lie beneath
// stateDir. The state directory belongs to the agent user, who may swap any
// path in it for a symlink at any moment: every component below stateDir
// is opened relative to its parent's descriptor without following a
// symlink, and the file without blocking (a FIFO or device is refused).
func openData(stateDir, src string) (*os.File, error) {
	absDir, err1 := filepath.Abs(stateDir)
	absSrc, err2 := filepath.Abs(src)
	rel, err3 := filepath.Rel(absDir, absSrc)
	if err := errors.Join(err1, err2, err3); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, fmt.Errorf("agent data %s is not in the state directory %s", src, stateDir)
	}
	fd, err := syscall.Open(absDir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening state directory: %w", err)
	}
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		flags := syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
		if i < len(parts)-1 {
			flags |= syscall.O_DIRECTORY
		} else {
			flags |= syscall.O_NONBLOCK
		}
		next, err := syscall.Openat(fd, p, flags, 0)
		syscall.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("opening agent data %s (no symlinks followed): %w", src, err)
		}
		fd = next
	}
	f := os.NewFile(uintptr(fd), src)
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("agent data %s is not a regular file", src)
	}
	return f, nil
}

// copyVerified copies in to a new file dst and checks, in the same pass,
// the bytes it writes: the checked bytes are the placed ones, whatever the
// source becomes meanwhile.
func copyVerified(in io.Reader, dst string, want expect) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", err)
	}
	w := &errWriter{w: out}
	if err := check(io.TeeReader(in, w), want); err != nil {
		out.Close()
		if w.err != nil {
			return fmt.Errorf("writing %s: %w", dst, w.err)
		}
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// errWriter keeps the error of its writer, so that a failed write is not
// reported as the failed read the TeeReader turns it into.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	n, err := e.w.Write(b)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// pieceBufs are check's piece buffers.
var pieceBufs = sync.Pool{New: func() any { b := make([]byte, torrentfile.PieceLength); return &b }}

// check reads a file's content from r to its end and checks its size and,
// in the same pass, its SHA-256 when the caller gave one, else the
// torrent's piece hashes. The caller's SHA-256 (from the repository's
// metadata, what the package manager checks) fixes every byte by itself:
// the piece hashes would add SHA-1 over the file and its padding (up to a
// piece per file) for nothing. The agent's data matched them when the agent
// took it; a direct download from the mirror is checked against them by the
// agent when it takes the file to seed (a file the torrent does not
// describe, the service's copy differing from the mirror's, is placed for
// the caller and not seeded).
func check(r io.Reader, want expect) error {
	var h256 hash.Hash
	if want.sha256 != nil {
		h256 = sha256.New()
	}
	bp := pieceBufs.Get().(*[]byte)
	defer pieceBufs.Put(bp)
	buf := *bp
	var size int64
	for i := 0; i < len(want.pieces)/20; i++ {
		n, err := io.ReadFull(r, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading: %w", err)
		}
		size += int64(n)
		if n == 0 || size > want.size {
			break // the size check below says so
		}
		if h256 != nil {
			h256.Write(buf[:n])
			continue
		}
		if sum := torrentfile.PieceHash(buf[:n], want.tail); !bytes.Equal(sum[:], want.pieces[i*20:i*20+20]) {
			if size != want.size && n < len(buf) {
				break
			}
			return fmt.Errorf("piece %d does not match the torrent", i)
		}
	}
	if n, err := io.ReadFull(r, buf[:1]); n > 0 {
		size++
	} else if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading: %w", err)
	}
	if size != want.size {
		return fmt.Errorf("size differs from the torrent's %d bytes", want.size)
	}
	if h256 != nil && !bytes.Equal(h256.Sum(nil), want.sha256) {
		return fmt.Errorf("sha256 %x does not match the expected %x", h256.Sum(nil), want.sha256)
	}
	return nil
}
