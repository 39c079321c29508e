//go:build cgo

package memguard

import (
	"sync/atomic"
	"time"
)

// later is a run, some time after the first of any number of requests,
// that serves them all: the young lists' sweep and the slot cache's
// flush, which every allocation or free may ask for (runLater).
type later struct {
	armed atomic.Bool
}

// runLater makes sure f(t) runs after d, unless l has a run due already.
// The run disarms l before it calls f, so that a request made while f
// runs, whose work f may miss, arms the next. f and t, not a closure, so
// that a request that finds a run due allocates nothing.
func runLater[T any](l *later, d time.Duration, f func(*T), t *T) {
	if !l.armed.Load() && l.armed.CompareAndSwap(false, true) {
		time.AfterFunc(d, func() {
			l.armed.Store(false)
			f(t)
		})
	}
}
