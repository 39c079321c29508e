//go:build cgo

package memguard

import (
	"runtime"
	"sync"
	"time"
)

// The collector's reclaim of a Buffer dropped without Destroy.
//
// A cleanup (runtime.AddCleanup) on the handle frees the state once the
// handle is unreachable. Adding one, and stopping it again at Destroy,
// costs about as much as the rest of making and destroying a compact
// secret, and most secrets are destroyed soon after they are made. So a
// new Buffer's handle waits among the young handles of its registry shard
// until the next sweep, at most youngAge later; the sweep adds cleanups to
// those still live and forgets the rest. A young handle is held by its
// shard, so it cannot be collected before its cleanup is in place: a
// dropped Buffer is reclaimed whatever its age, at most youngAge later
// than a cleanup added at creation would have done it. Destroy never
// stops a cleanup: one that runs after Destroy finds the state dead and
// does nothing.

// youngAge is how long a new handle may wait for its cleanup.
const youngAge = 10 * time.Millisecond

// youngBlock is how many young handles a block of a young list holds.
const youngBlock = 256

// youngHandle is a handle awaiting its cleanup, with its state: the sweep
// reads the state from here, not from the handle, which its owner may
// overwrite meanwhile.
type youngHandle struct {
	h *Buffer
	s *bufferState
}

// youngList is a registry shard's young handles, in the order they were
// added, in fixed blocks: adding never copies the handles already there,
// and a sweep hands the blocks back to youngBlocks for the next handles.
type youngList struct {
	blocks []*[youngBlock]youngHandle
	n      int // handles: blocks hold n, then zero entries
	scanAt int // the length at which add next drops the dead
}

// youngBlocks holds empty blocks for young lists. The pool gives them
// back to the collector when they go unused for a while.
var youngBlocks = sync.Pool{New: func() any { return new([youngBlock]youngHandle) }}

// at is the place of handle i.
func (l *youngList) at(i int) *youngHandle { return &l.blocks[i/youngBlock][i%youngBlock] }

// add appends y. At a block's length, and then whenever the list has
// doubled since, it first drops the handles of Buffers no longer live,
// which need no cleanup: making and destroying Buffers in a loop keeps
// the list at one block, and a list of live handles is scanned a number
// of times logarithmic in its length, each scan paid for by the handles
// added since the last.
func (l *youngList) add(y youngHandle) {
	if l.n >= l.scanAt {
		l.dropDead()
		l.scanAt = max(2*l.n, youngBlock)
	}
	if l.n == len(l.blocks)*youngBlock {
		l.blocks = append(l.blocks, youngBlocks.Get().(*[youngBlock]youngHandle))
	}
	*l.at(l.n) = y
	l.n++
}

// dropDead removes the handles of Buffers no longer live, in place.
func (l *youngList) dropDead() {
	kept := 0
	for i := range l.n {
		if y := l.at(i); y.s.live.Load() {
			*l.at(kept) = *y
			kept++
		}
	}
	for i := kept; i < l.n; i++ {
		*l.at(i) = youngHandle{}
	}
	l.n = kept
}

// release empties the list and hands its blocks back to youngBlocks.
func (l *youngList) release() {
	for _, b := range l.blocks {
		clear(b[:])
		youngBlocks.Put(b)
	}
	*l = youngList{}
}

// sweep runs the process registry's sweepYoung.
var sweep later

// sweepSoon makes sure a sweep of the process's registry is due: called
// after a handle joins a young list. A handle that joins one while a
// sweep runs either is taken by it or arms the next.
func sweepSoon() { runLater(&sweep, youngAge, (*registry).sweepYoung, &buffers) }

// sweepYoung adds the cleanup of every young handle whose Buffer is still
// live, and empties the young lists.
func (r *registry) sweepYoung() {
	for k := range r.shards {
		sh := &r.shards[k]
		sh.mu.Lock()
		young := sh.young
		sh.young = youngList{}
		sh.mu.Unlock()
		// Newest first: the runtime keeps a span's cleanups sorted by
		// address and finds each one's place from the lowest, and handles
		// made one after another mostly ascend in address, so this order
		// finds each place at once, where the other would walk the span's
		// whole list every time.
		for i := young.n - 1; i >= 0; i-- {
			if y := young.at(i); y.s.live.Load() {
				runtime.AddCleanup(y.h, reclaimBuffer, y.s)
			}
		}
		young.release()
	}
}

// reclaimBuffer frees the state of a Buffer dropped without Destroy.
// Only a Buffer still live counts: one that Destroy or a Purge ended
// was not leaked.
func reclaimBuffer(s *bufferState) {
	if s.live.CompareAndSwap(true, false) {
		reclaimed.Add(1)
		s.destroy()
	}
}
