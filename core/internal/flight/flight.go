// Package flight shares one call among the concurrent callers asking for the
// same key, like golang.org/x/sync/singleflight, but bounds the call by its
// callers' interest: the call runs under a context of its own that is
// canceled once every caller waiting for it has given up.
package flight

import (
	"context"
	"sync"
)

// Group runs calls by key. The zero value is ready to use.
type Group[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int
	cancel  context.CancelFunc
}

// Do returns the result of fn for key. If no call for key is running, Do
// starts fn in a new goroutine; otherwise it waits for the running one.
//
// fn's context carries ctx's values but not its cancellation: it is
// canceled when every caller waiting for this call has returned because its
// own context was done. Such a caller returns its context's error at once.
// A call abandoned by all its callers is forgotten, so a later Do for key
// starts a new call instead of joining the canceled one.
func (g *Group[K, V]) Do(ctx context.Context, key K, fn func(context.Context) (V, error)) (V, error) {
	g.mu.Lock()
	c := g.calls[key]
	if c == nil {
		if g.calls == nil {
			g.calls = make(map[K]*call[V])
		}
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call[V]{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		go g.run(fctx, key, c, fn)
	}
	c.waiters++
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-c.done: // finished meanwhile: the result is there, use it
		return c.val, c.err
	default:
	}
	c.waiters--
	if c.waiters == 0 {
		c.cancel()
		if g.calls[key] == c {
			delete(g.calls, key)
		}
	}
	var zero V
	return zero, context.Cause(ctx)
}

// Waiters returns how many callers wait for the running call for key (0
// when none runs).
func (g *Group[K, V]) Waiters(key K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.calls[key]; c != nil {
		return c.waiters
	}
	return 0
}

func (g *Group[K, V]) run(ctx context.Context, key K, c *call[V], fn func(context.Context) (V, error)) {
	defer c.cancel()
	v, err := fn(ctx)
	g.mu.Lock()
	c.val, c.err = v, err
	if g.calls[key] == c {
		delete(g.calls, key)
	}
	close(c.done)
	g.mu.Unlock()
}
