package flight

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkgtorrent/pkgtorrent/internal/testkit"
)

func TestSharedCallRunsOnce(t *testing.T) {
	var g Group[string, int]
	var runs atomic.Int32
	release := make(chan struct{})
	fn := func(ctx context.Context) (int, error) {
		runs.Add(1)
		<-release
		return 42, nil
	}
	results := make(chan int, 2)
	for range 2 {
		go func() {
			v, err := g.Do(context.Background(), "k", fn)
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	testkit.WaitFor(t, "two waiters", 10*time.Second, func() bool { return g.Waiters("k") == 2 })
	close(release)
	for range 2 {
		if v := <-results; v != 42 {
			t.Errorf("result %d, want 42", v)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("fn ran %d times, want 1", n)
	}
}

func TestCanceledOnlyWhenAllWaitersLeave(t *testing.T) {
	var g Group[string, int]
	started := make(chan struct{})
	canceled := make(chan struct{})
	release := make(chan struct{})
	fn := func(ctx context.Context) (int, error) {
		close(started)
		select {
		case <-ctx.Done():
			close(canceled)
			return 0, ctx.Err()
		case <-release:
			return 7, nil
		}
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	err1 := make(chan error, 1)
	go func() { _, err := g.Do(ctx1, "k", fn); err1 <- err }()
	<-started
	res2 := make(chan error, 1)
	go func() { _, err := g.Do(ctx2, "k", fn); res2 <- err }()
	testkit.WaitFor(t, "second waiter", 10*time.Second, func() bool { return g.Waiters("k") == 2 })

	cancel1()
	if err := <-err1; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: %v, want context.Canceled", err)
	}
	select {
	case <-canceled:
		t.Fatal("the call was canceled while a caller still waited")
	case <-time.After(50 * time.Millisecond):
	}

	cancel2()
	if err := <-res2; !errors.Is(err, context.Canceled) {
		t.Errorf("second caller: %v, want context.Canceled", err)
	}
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the call was not canceled after its last caller left")
	}

	// The abandoned call is forgotten: a new caller starts a new one.
	if n := g.Waiters("k"); n != 0 {
		t.Errorf("Waiters after abandonment = %d, want 0", n)
	}
	v, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { return 9, nil })
	if v != 9 || err != nil {
		t.Errorf("Do after abandonment: %d, %v; want 9, nil", v, err)
	}
	close(release)
}

func TestContextValuesReachTheCall(t *testing.T) {
	type keyT struct{}
	var g Group[int, string]
	ctx := context.WithValue(context.Background(), keyT{}, "v")
	got, err := g.Do(ctx, 1, func(ctx context.Context) (string, error) {
		s, _ := ctx.Value(keyT{}).(string)
		return s, nil
	})
	if got != "v" || err != nil {
		t.Errorf("Do: %q, %v; want the caller's value", got, err)
	}
}
