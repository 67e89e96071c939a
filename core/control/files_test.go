package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pair returns a client connection (Dial) and the agent's side of it, over
// a unix listener in a temporary state directory, closed when the test
// ends.
func pair(t *testing.T) (*Conn, *net.UnixConn) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("unix", SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { s.Close() })
	return c, s.(*net.UnixConn)
}

// tempFiles writes one file per content and returns them open read-only,
// closed when the test ends.
func tempFiles(t *testing.T, contents ...string) []*os.File {
	t.Helper()
	dir := t.TempDir()
	var files []*os.File
	for i, s := range contents {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	return files
}

// fdID is what a descriptor refers to, to tell later whether it is still
// open on the same file.
type fdID struct{ dev, ino uint64 }

func identify(t *testing.T, fd int) fdID {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat %d: %v", fd, err)
	}
	return fdID{uint64(st.Dev), st.Ino}
}

// stillOpen reports whether fd still refers to the file id.
func stillOpen(fd int, id fdID) bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return false
	}
	return uint64(st.Dev) == id.dev && st.Ino == id.ino
}

// rawSend sends line (no newline added) with the descriptors of files, as
// a client that does not go through SendFiles.
func rawSend(t *testing.T, c *Conn, line []byte, files []*os.File) {
	t.Helper()
	if _, _, err := c.c.(*net.UnixConn).WriteMsgUnix(line, Rights(files), nil); err != nil {
		t.Fatal(err)
	}
}

func requestJSON(t *testing.T, r Request) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// Several import requests, each with its files, arrive in order with the
// files' contents; the files handed out read independently of the
// sender's (closed) copies; the client hanging up ends with io.EOF.
func TestSendFilesRoundTrip(t *testing.T) {
	c, s := pair(t)
	type batch struct {
		paths    []string
		contents []string
	}
	many := batch{}
	for i := range MaxImportFiles {
		many.paths = append(many.paths, fmt.Sprintf("many/%d.rpm", i))
		many.contents = append(many.contents, fmt.Sprintf("content %d", i))
	}
	batches := []batch{
		{[]string{"os/a.rpm"}, []string{"alpha"}},
		{[]string{"os/b.rpm", "os/c d.rpm", "os/e.rpm"}, []string{"bravo", "", strings.Repeat("e", 100_000)}},
		many,
		{[]string{"os/f.rpm", "os/g.rpm"}, []string{"foxtrot", "golf"}},
	}
	sent := make(chan error, 1)
	go func() {
		for _, b := range batches {
			files := tempFiles(t, b.contents...)
			err := c.SendFiles(b.paths, files)
			for _, f := range files {
				f.Close() // the receiver's copies stay open
			}
			if err != nil {
				sent <- err
				return
			}
		}
		sent <- c.Close()
	}()
	fr := NewFileReceiver(s)
	defer fr.Close()
	for i, b := range batches {
		req, files, err := fr.Next()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if req.Op != "import" || strings.Join(req.Paths, "|") != strings.Join(b.paths, "|") {
			t.Fatalf("request %d: op %q paths %q, want import of %q", i, req.Op, req.Paths, b.paths)
		}
		if len(files) != len(b.paths) {
			t.Fatalf("request %d: %d files for %d paths", i, len(files), len(b.paths))
		}
		for j, f := range files {
			got, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				t.Fatalf("request %d file %d: %v", i, j, err)
			}
			if string(got) != b.contents[j] {
				t.Errorf("request %d: %s has %d bytes %.20q, want %.20q", i, b.paths[j], len(got), got, b.contents[j])
			}
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if _, files, err := fr.Next(); !errors.Is(err, io.EOF) || files != nil {
		t.Fatalf("after the client hung up: %v, %d files; want io.EOF", err, len(files))
	}
}

// SendFiles refuses what the receiver would: no files, more than
// MaxImportFiles, paths and files that do not pair up.
func TestSendFilesRefuses(t *testing.T) {
	c, _ := pair(t)
	files := tempFiles(t, "x", "y")
	var lots []*os.File
	var lotsPaths []string
	for range MaxImportFiles + 1 {
		lots = append(lots, files[0])
		lotsPaths = append(lotsPaths, "p")
	}
	for _, tc := range []struct {
		what  string
		paths []string
		files []*os.File
	}{
		{"nothing", nil, nil},
		{"more paths", []string{"a", "b"}, files[:1]},
		{"more files", []string{"a"}, files},
		{"too many", lotsPaths, lots},
	} {
		if err := c.SendFiles(tc.paths, tc.files); err == nil {
			t.Errorf("%s: sent", tc.what)
		}
	}
}

// What is not an import request with its files is an error, and every
// descriptor received with it is closed.
func TestFileReceiverRefuses(t *testing.T) {
	for _, tc := range []struct {
		what  string
		send  func(t *testing.T, c *Conn, files []*os.File)
		files int // descriptors that reach the receiver
	}{
		{"a request line without its descriptors", func(t *testing.T, c *Conn, _ []*os.File) {
			if err := c.Send(Request{Op: "import", Paths: []string{"os/a.rpm"}}); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"fewer descriptors than paths", func(t *testing.T, c *Conn, files []*os.File) {
			rawSend(t, c, requestJSON(t, Request{Op: "import", Paths: []string{"a", "b", "c"}}), files[:2])
		}, 2},
		{"a fetch request with descriptors", func(t *testing.T, c *Conn, files []*os.File) {
			rawSend(t, c, requestJSON(t, Request{Op: "fetch", Paths: []string{"a", "b"}}), files[:2])
		}, 2},
		{"a stop request", func(t *testing.T, c *Conn, files []*os.File) {
			rawSend(t, c, requestJSON(t, Request{Op: "stop"}), files[:1])
		}, 1},
		{"an import of no path", func(t *testing.T, c *Conn, files []*os.File) {
			rawSend(t, c, requestJSON(t, Request{Op: "import"}), files[:1])
		}, 1},
		{"not JSON", func(t *testing.T, c *Conn, files []*os.File) {
			rawSend(t, c, []byte("{import\n"), files[:2])
		}, 2},
	} {
		t.Run(tc.what, func(t *testing.T) {
			c, s := pair(t)
			files := tempFiles(t, "one", "two", "three")
			ids := map[fdID]bool{}
			for _, f := range files {
				ids[identify(t, int(f.Fd()))] = true
			}
			tc.send(t, c, files)
			fr := NewFileReceiver(s)
			defer fr.Close()
			req, got, err := fr.Next()
			if err == nil || errors.Is(err, io.EOF) || got != nil {
				t.Fatalf("Next: %+v, %d files, %v; want an error", req, len(got), err)
			}
			t.Logf("error: %v", err)
			if len(fr.fds) != 0 {
				t.Errorf("%d descriptors still held after the error", len(fr.fds))
			}
			if n := openOn(t, ids, files); n != 0 {
				t.Errorf("%d descriptors of the sent files open in the receiver", n)
			}
		})
	}
}

// openOn counts the descriptors of this process open on the files of ids,
// besides the test's own (files).
func openOn(t *testing.T, ids map[fdID]bool, files []*os.File) int {
	t.Helper()
	own := map[int]bool{}
	for _, f := range files {
		own[int(f.Fd())] = true
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	n := 0
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err != nil || own[fd] {
			continue
		}
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil && ids[fdID{uint64(st.Dev), st.Ino}] {
			n++
		}
	}
	return n
}

// The client hanging up before any request is io.EOF.
func TestFileReceiverEOF(t *testing.T) {
	c, s := pair(t)
	c.Close()
	fr := NewFileReceiver(s)
	defer fr.Close()
	if _, files, err := fr.Next(); !errors.Is(err, io.EOF) || files != nil {
		t.Fatalf("Next: %d files, %v; want io.EOF", len(files), err)
	}
	// A partial line, then the hang-up: no request.
	c, s = pair(t)
	rawSend(t, c, []byte(`{"op":"import","paths":["a"]`), tempFiles(t, "a"))
	c.Close()
	fr = NewFileReceiver(s)
	defer fr.Close()
	if _, files, err := fr.Next(); err == nil || files != nil {
		t.Fatalf("Next after a partial line: %d files, %v; want an error", len(files), err)
	}
	if len(fr.fds) != 0 {
		t.Errorf("%d descriptors held after the hang-up", len(fr.fds))
	}
}

// Descriptors received but not handed out (more than the request named)
// are closed by Close.
func TestFileReceiverCloseClosesLeftovers(t *testing.T) {
	c, s := pair(t)
	files := tempFiles(t, "named", "extra 1", "extra 2")
	rawSend(t, c, requestJSON(t, Request{Op: "import", Paths: []string{"os/a.rpm"}}), files)
	fr := NewFileReceiver(s)
	req, got, err := fr.Next()
	if err != nil || len(got) != 1 || req.Paths[0] != "os/a.rpm" {
		t.Fatalf("Next: %+v, %d files, %v", req, len(got), err)
	}
	if b, _ := io.ReadAll(got[0]); string(b) != "named" {
		t.Errorf("file handed out reads %q", b)
	}
	got[0].Close()
	if len(fr.fds) != 2 {
		t.Fatalf("%d descriptors held, want the 2 extra ones", len(fr.fds))
	}
	held := append([]int(nil), fr.fds...)
	ids := make([]fdID, len(held))
	for i, fd := range held {
		ids[i] = identify(t, fd)
		if flags, err := fcntl(fd, syscall.F_GETFD); err != nil || flags&syscall.FD_CLOEXEC == 0 {
			t.Errorf("held descriptor %d: flags %#x, %v; want close-on-exec", fd, flags, err)
		}
	}
	fr.Close()
	for i, fd := range held {
		if stillOpen(fd, ids[i]) {
			t.Errorf("descriptor %d still open after Close", fd)
		}
	}
	if len(fr.fds) != 0 {
		t.Errorf("%d descriptors listed after Close", len(fr.fds))
	}
}

func fcntl(fd, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// A client sending descriptors without the requests to name them (a byte
// at a time, each with as many descriptors as one message takes) does not
// make the receiver hold more than one request's worth: it is an error,
// and they are closed.
func TestFileReceiverBoundsDescriptors(t *testing.T) {
	c, s := pair(t)
	files := tempFiles(t, "x")
	ids := map[fdID]bool{identify(t, int(files[0].Fd())): true}
	many := make([]*os.File, MaxImportFiles)
	for i := range many {
		many[i] = files[0]
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if _, _, err := c.c.(*net.UnixConn).WriteMsgUnix([]byte(" "), syscall.UnixRights(fdsOf(many)...), nil); err != nil {
				return // the receiver gave up
			}
		}
		c.c.Write([]byte(`{"op":"import","paths":["a"]}` + "\n"))
		c.Close()
	}()
	fr := NewFileReceiver(s)
	defer fr.Close()
	req, got, err := fr.Next()
	for _, f := range got {
		f.Close()
	}
	held := len(fr.fds)
	s.Close()
	<-done
	if err == nil || errors.Is(err, io.EOF) {
		// Before the fix, the receiver took every descriptor, held 1279
		// of them and handed out one with the request.
		t.Errorf("Next: %+v, %d files, %v, %d descriptors held; want an error", req, len(got), err, held)
	} else {
		t.Logf("Next: %v", err)
	}
	if held != 0 {
		t.Errorf("%d descriptors held after the error", held)
	}
	if n := openOn(t, ids, files); n != 0 {
		t.Errorf("%d descriptors of the sent file still open in the receiver", n)
	}
}

func fdsOf(files []*os.File) []int {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return fds
}
