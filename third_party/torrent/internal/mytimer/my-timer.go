package mytimer

import (
	"math"
	"time"

	"github.com/anacrolix/missinggo/v2/panicif"
	"github.com/anacrolix/sync"
)

// Very common pattern I have in my code, a timer that coordinates resets from the callback
// function, externally, and tracks when it's due. Only one instance of the timer callback can be
// running at a time, and that callback is responsible for also returning the next delay.
type Timer struct {
	mu     sync.RWMutex
	when   TimeValue
	f      Func
	t      *time.Timer
	inited bool
	// While the callback runs (pkgtorrent patch), the earliest time an Update asked for: the
	// callback may have computed its next time before that Update's change.
	running bool
	pending TimeValue
}

func (me *Timer) Init(first TimeValue, f Func) {
	panicif.True(me.inited)
	me.inited = true
	me.f = f
	me.when = first
	d := time.Until(first.Time)
	if first.IsZero() {
		d = math.MaxInt64
	}
	// Should we Stop the timer if there's no initial delay set? We can't update the timer
	// externally unless we know if the timer is scheduled.
	me.t = time.AfterFunc(d, me.innerCallback)
}

func (me *Timer) update(when TimeValue) {
	me.mu.Lock()
	defer me.mu.Unlock()
	// Avoid hammering the scheduler with changes. I think it's cheaper to hit the Timer mutex than
	// it is to reset the timer unnecessarily.
	if me.running {
		if !when.IsZero() && (me.pending.IsZero() || when.Before(me.pending.Time)) {
			me.pending = when
		}
		return
	}
	if effectivelyEq(when, me.when) {
		return
	}
	if !me.t.Stop() {
		// Timer callback might be active.
		if !me.when.IsZero() {
			// Timer callback is running.
			return
		}
	}
	me.reset(when)
}

func (me *Timer) reset(when TimeValue) {
	me.when = when
	if !me.when.IsZero() {
		panicif.True(me.t.Reset(time.Until(me.when.Time)))
	}
}
func (me *Timer) When() TimeValue {
	return me.when
}

func (me *Timer) innerCallback() {
	panicif.True(me.when.IsZero())
	panicif.True(me.when.After(time.Now()))
	// Nobody else can set it while we're running (when is non-zero and the timer has fired
	// already). An Update made after f has computed its result, but before the reset below, was
	// dropped, and the timer could stop for good with work pending (a torrent added then never
	// announced: pkgtorrent patch); such Updates are kept in pending.
	me.mu.Lock()
	me.running, me.pending = true, Never()
	me.mu.Unlock()
	when := me.f()
	me.mu.Lock()
	me.running = false
	if !me.pending.IsZero() && (when.IsZero() || me.pending.Before(when.Time)) {
		when = me.pending
	}
	me.reset(when)
	me.mu.Unlock()
}

// Resets if the timer func hasn't fired.
func (me *Timer) Update(when TimeValue) {
	me.update(when)
}
