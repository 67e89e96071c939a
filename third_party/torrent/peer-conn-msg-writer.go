package torrent

import (
	"bytes"
	"io"
	"time"

	"github.com/anacrolix/chansync"
	"github.com/anacrolix/log"
	"github.com/anacrolix/sync"

	pp "github.com/anacrolix/torrent/peer_protocol"
)

func (pc *PeerConn) initMessageWriter() {
	w := &pc.messageWriter
	*w = peerConnMsgWriter{
		fillWriteBuffer: func() {
			pc.locker().Lock()
			defer pc.locker().Unlock()
			if pc.closed.IsSet() {
				return
			}
			pc.fillWriteBuffer()
		},
		closed: &pc.closed,
		logger: pc.logger,
		w:      pc.w,
		keepAlive: func() bool {
			pc.locker().RLock()
			defer pc.locker().RUnlock()
			return pc.useful()
		},
		writeBuffer: new(peerConnMsgWriterBuffer),
		haveLinger:  pc.t.cl.config.HaveLinger,
	}
}

func (pc *PeerConn) startMessageWriter() {
	pc.initMessageWriter()
	go pc.messageWriterRunner()
}

func (pc *PeerConn) messageWriterRunner() {
	defer pc.locker().Unlock()
	defer pc.close()
	defer pc.locker().Lock()
	pc.messageWriter.run(pc.t.cl.config.KeepAliveTimeout)
}

type peerConnMsgWriterBuffer struct {
	// The number of bytes in the buffer that are part of a piece message. When
	// the whole buffer is written, we can count this many bytes.
	pieceDataBytes int
	// With a HAVE linger (pkgtorrent patch): when the first message that may wait went into the
	// empty buffer, and whether a message that may not wait followed.
	lazySince time.Time
	urgent    bool
	bytes.Buffer
}

func (b *peerConnMsgWriterBuffer) resetLinger() {
	b.lazySince = time.Time{}
	b.urgent = false
}

type peerConnMsgWriter struct {
	// Must not be called with the local mutex held, as it will call back into the write method.
	fillWriteBuffer func()
	closed          *chansync.SetOnce
	logger          log.Logger
	w               io.Writer
	keepAlive       func() bool

	mu        sync.Mutex
	writeCond chansync.BroadcastCond
	// Pointer so we can swap with the "front buffer".
	writeBuffer *peerConnMsgWriterBuffer

	// See ClientConfig.HaveLinger (pkgtorrent patch).
	haveLinger time.Duration

	totalWriteDuration    time.Duration
	totalBytesWritten     int64
	totalDataBytesWritten int64
	dataUploadRate        float64
}

// Routine that writes to the peer. Some of what to write is buffered by
// activity elsewhere in the Client, and some is determined locally when the
// connection is writable.
func (cn *peerConnMsgWriter) run(keepAliveTimeout time.Duration) {
	lastWrite := time.Now()
	keepAliveTimer := time.NewTimer(keepAliveTimeout)
	frontBuf := new(peerConnMsgWriterBuffer)
	for {
		if cn.closed.IsSet() {
			return
		}
		// Install the wakeup channel before filling the buffer, so a
		// Broadcast that lands during fillWriteBuffer closes a channel the
		// select below observes, instead of being dropped. See #1070.
		writeCond := cn.writeCond.Signaled()
		cn.fillWriteBuffer()
		keepAlive := cn.keepAlive()
		cn.mu.Lock()
		if cn.writeBuffer.Len() == 0 && time.Since(lastWrite) >= keepAliveTimeout && keepAlive {
			cn.writeBuffer.Write(pp.Message{Keepalive: true}.MustMarshalBinary())
			torrent.Add("written keepalives", 1)
		}
		if wait := cn.lingerLeft(); wait > 0 {
			// Only HAVEs are buffered: let more join them in one write (pkgtorrent patch). The
			// keepalive timer serves: a buffer that is not empty needs no keepalive.
			cn.mu.Unlock()
			keepAliveTimer.Reset(wait)
			select {
			case <-cn.closed.Done():
			case <-writeCond:
			case <-keepAliveTimer.C:
			}
			continue
		}
		if cn.writeBuffer.Len() == 0 {
			cn.mu.Unlock()
			// Wake at the keepalive deadline. If it has already passed (a keepalive wasn't wanted
			// above), poll again in a full interval.
			wait := keepAliveTimeout - time.Since(lastWrite)
			if wait <= 0 {
				wait = keepAliveTimeout
			}
			keepAliveTimer.Reset(wait)
			select {
			case <-cn.closed.Done():
			case <-writeCond:
			case <-keepAliveTimer.C:
			}
			continue
		}
		// Flip the buffers.
		frontBuf, cn.writeBuffer = cn.writeBuffer, frontBuf
		cn.writeBuffer.resetLinger()
		cn.mu.Unlock()
		if frontBuf.Len() == 0 {
			panic("expected non-empty front buffer")
		}
		var err error
		startedWriting := time.Now()
		startingBufLen := frontBuf.Len()
		for frontBuf.Len() != 0 {
			next := frontBuf.Bytes()
			var n int
			n, err = cn.w.Write(next)
			frontBuf.Next(n)
			if err == nil && n != len(next) {
				panic("expected full write")
			}
			if err != nil {
				break
			}
		}
		if err != nil {
			cn.logger.WithDefaultLevel(log.Debug).Printf("error writing: %v", err)
			return
		}
		// Track what was sent and how long it took.
		writeDuration := time.Since(startedWriting)
		cn.mu.Lock()
		cn.dataUploadRate = float64(frontBuf.pieceDataBytes) / writeDuration.Seconds()
		cn.totalWriteDuration += writeDuration
		cn.totalBytesWritten += int64(startingBufLen)
		cn.totalDataBytesWritten += int64(frontBuf.pieceDataBytes)
		cn.mu.Unlock()
		frontBuf.pieceDataBytes = 0
		lastWrite = time.Now()
	}
}

func (cn *peerConnMsgWriter) writeToBuffer(msg pp.Message) (err error) {
	originalLen := cn.writeBuffer.Len()
	defer func() {
		if err != nil {
			// Since an error occurred during buffer write, revert buffer to its original state before the write.
			cn.writeBuffer.Truncate(originalLen)
		}
	}()
	err = msg.WriteTo(cn.writeBuffer)
	if err == nil {
		cn.writeBuffer.pieceDataBytes += len(msg.Piece)
		if cn.haveLinger > 0 {
			if lazy(msg) {
				if originalLen == 0 {
					cn.writeBuffer.lazySince = time.Now()
				}
			} else {
				cn.writeBuffer.urgent = true
			}
		}
	}
	return
}

// lazy reports whether msg may wait in the buffer for ClientConfig.HaveLinger (pkgtorrent patch).
func lazy(msg pp.Message) bool {
	return msg.Type == pp.Have && !msg.Keepalive
}

// lingerLeft returns how much longer the buffer, holding only messages that may wait, waits for
// more before it is written; 0 when it is written now. Called with mu held (pkgtorrent patch).
func (cn *peerConnMsgWriter) lingerLeft() time.Duration {
	b := cn.writeBuffer
	if cn.haveLinger <= 0 || b.Len() == 0 || b.urgent || b.Len() >= writeBufferHighWaterLen {
		return 0
	}
	return cn.haveLinger - time.Since(b.lazySince)
}

// write buffers msg and wakes the writer, and reports whether the buffer has room for more. A
// message that may wait (see lazy) wakes it only when it is the first in the buffer, which starts
// the linger (pkgtorrent patch).
func (cn *peerConnMsgWriter) write(msg pp.Message) (notFull, woke bool) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	wasEmpty := cn.writeBuffer.Len() == 0
	cn.writeToBuffer(msg)
	if cn.haveLinger <= 0 || !lazy(msg) || wasEmpty {
		cn.writeCond.Broadcast()
		woke = true
	}
	return !cn.writeBufferFull(), woke
}

func (cn *peerConnMsgWriter) writeBufferFull() bool {
	return cn.writeBuffer.Len() >= writeBufferHighWaterLen
}
