package fetch

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"

	pmeta "github.com/pkgtorrent/pkgtorrent/core/metainfo"
)

// expect is what a placed file must match.
type expect struct {
	size   int64
	pieces []byte // piece hashes, last one unpadded when tail
	tail   bool   // the file is last in its torrent: its last piece is unpadded
	sha256 []byte
}

// place puts a verified copy of src at out: hard link (or copy) to a
// temporary name beside out, verify it, rename. out is replaced, never
// followed if it is a symlink; on error nothing is left behind.
//
// src is hard-linked only when it belongs to the caller: a file of an agent
// running as another user is copied, so that the agent cannot change the
// placed file after it was verified. src must be a regular file (a symlink
// or FIFO handed over by the agent is refused).
func place(src, out string, want expect) (err error) {
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
	if ownFile(src) && os.Link(src, tmp) == nil {
		err = verify(tmp, want)
	} else {
		err = copyVerified(src, tmp, want)
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("placing %s: %w", out, err)
	}
	return nil
}

// ownFile reports whether p is a regular file (not a symlink) owned by the
// effective user.
func ownFile(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// copyVerified copies src to a new file dst and checks, in the same pass,
// the bytes it writes: the checked bytes are the placed ones, whatever src
// becomes meanwhile.
func copyVerified(src, dst string, want expect) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("opening agent data: %w", err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("agent data %s is not a regular file", src)
	}
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

// verify checks a file's size, piece hashes and (if wanted) SHA-256.
func verify(path string, want expect) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != want.size {
		return fmt.Errorf("size %d, want %d", fi.Size(), want.size)
	}
	return check(f, want)
}

// check reads a file's content from r to its end and checks its size, piece
// hashes and (if wanted) SHA-256 in one pass.
func check(r io.Reader, want expect) error {
	var h256 hash.Hash
	if want.sha256 != nil {
		h256 = sha256.New()
	}
	buf := make([]byte, pmeta.PieceLength)
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
		}
		piece := buf
		if n < len(buf) {
			if want.tail {
				piece = buf[:n]
			} else {
				clear(buf[n:])
			}
		}
		if sum := sha1.Sum(piece); !bytes.Equal(sum[:], want.pieces[i*20:i*20+20]) {
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
		return fmt.Errorf("sha256 %x, want %x", h256.Sum(nil), want.sha256)
	}
	return nil
}
