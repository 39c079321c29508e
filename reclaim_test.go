//go:build cgo

package memguard

import (
	"bytes"
	"reflect"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cleanupsQueued is the runtime's count of cleanups it has queued to run.
func cleanupsQueued() uint64 {
	s := []metrics.Sample{{Name: "/gc/cleanups/queued:cleanups"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// collectGarbage runs the collector until the cleanups it queues have
// had their turn.
func collectGarbage() {
	for range 3 {
		runtime.GC()
		runtime.Gosched()
	}
}

// The sweep adds no cleanup for a Buffer no longer live: collecting its
// handle queues none.
func TestSweepSkipsDeadBuffers(t *testing.T) {
	const n = 1000
	var r registry
	collectGarbage() // what earlier tests dropped
	queued := cleanupsQueued()
	func() {
		states := make([]*bufferState, n)
		for i := range states {
			states[i] = new(bufferState)
			states[i].live.Store(true)
			r.add(states[i], &Buffer{bufferState: states[i]})
		}
		for _, s := range states {
			s.live.Store(false) // as Destroy or Purge does
		}
		r.sweepYoung()
	}()
	collectGarbage()
	assert.Less(t, cleanupsQueued()-queued, uint64(n/10), "handles collected without cleanups")
}

// A Buffer still live at the sweep gets its cleanup: dropped, it is
// reclaimed, whether it was dropped before or after the sweep.
func TestSweptBuffersAreReclaimed(t *testing.T) {
	const n = 1000
	for _, opts := range [][]Option{nil, {Compact()}} {
		base := Stats()
		drop := func() {
			for range n / 2 {
				_, err := NewBuffer(32, opts...)
				require.NoError(t, err)
			}
		}
		drop()
		buffers.sweepYoung()
		drop()
		untilTrue(t, time.Minute, func() bool {
			runtime.GC()
			s := Stats()
			return s.Reclaimed == base.Reclaimed+n && s.LiveBuffers == base.LiveBuffers
		})
	}
}

// Making and destroying Buffers in a loop keeps a young list at one
// block: the dead are dropped whenever it is full.
func TestYoungListStaysShortUnderChurn(t *testing.T) {
	var r registry
	for range 100_000 {
		s := new(bufferState)
		s.live.Store(true)
		r.add(s, &Buffer{bufferState: s})
		s.live.Store(false)
		r.remove(s)
	}
	for k := range r.shards {
		assert.LessOrEqual(t, len(r.shards[k].young.blocks), 1, "shard %d", k)
	}
}

// A young list keeps its live handles, in order, across the drops of the
// dead, and a sweep empties it and hands its blocks back.
func TestYoungListKeepsLiveInOrder(t *testing.T) {
	var l youngList
	var live []*bufferState
	for i := range 5 * youngBlock {
		s := new(bufferState)
		s.live.Store(true)
		l.add(youngHandle{&Buffer{bufferState: s}, s})
		if i%3 == 0 {
			live = append(live, s)
		} else {
			s.live.Store(false)
		}
	}
	l.dropDead()
	require.Equal(t, len(live), l.n)
	for i, s := range live {
		assert.Same(t, s, l.at(i).s, "handle %d", i)
		assert.Same(t, s, l.at(i).h.bufferState)
	}
	for i := l.n; i < len(l.blocks)*youngBlock; i++ {
		assert.Equal(t, youngHandle{}, *l.at(i), "dropped entry %d cleared", i)
	}
	// Live handles only: the list grows block by block, and once it has
	// scanned itself it does not scan again, at any block's end, before it
	// has doubled.
	addLive := func() {
		s := new(bufferState)
		s.live.Store(true)
		l.add(youngHandle{&Buffer{bufferState: s}, s})
	}
	for last := l.scanAt; l.scanAt == last; {
		addLive()
	}
	next := l.scanAt
	require.GreaterOrEqual(t, next, 2*(l.n-1))
	for l.n < next {
		addLive()
	}
	assert.Equal(t, next, l.scanAt, "no scan before the list has doubled")
	assert.Equal(t, (l.n+youngBlock-1)/youngBlock, len(l.blocks), "no block but the last has room")

	blocks := l.blocks
	l.release()
	assert.Zero(t, l.n)
	assert.Empty(t, l.blocks)
	for _, b := range blocks {
		assert.Equal(t, [youngBlock]youngHandle{}, *b, "a block handed back holds no handle")
	}
}

// bufferMakers are the constructors a Buffer can come from.
var bufferMakers = []func() (*Buffer, error){
	func() (*Buffer, error) { return NewBuffer(32) },
	func() (*Buffer, error) { return NewBuffer(32, Compact()) },
	func() (*Buffer, error) { return NewBuffer(32, NoAccessWhenIdle()) },
	func() (*Buffer, error) { return NewBufferFromBytes(bytes.Repeat([]byte{7}, 40)) },
	func() (*Buffer, error) { return NewBufferFromReader(bytes.NewReader(make([]byte, 64)), 48) },
	func() (*Buffer, error) { return NewBufferFromEntireReader(bytes.NewReader(make([]byte, 5000))) },
	func() (*Buffer, error) {
		e, err := NewEnclaveRandom(32)
		if err != nil {
			return nil, err
		}
		return e.Open()
	},
	func() (*Buffer, error) {
		s := NewStream()
		if _, err := s.Write(make([]byte, 100)); err != nil {
			return nil, err
		}
		return s.Flush()
	},
}

// Buffers from every constructor, swept young or not, racing a goroutine
// that sweeps without pause, end every way a Buffer can: Destroy, a
// dropped handle, a handle reset to the zero Buffer and dropped, Seal, a
// copy of the handle kept a while, Destroy through a copy. Every dropped
// Buffer is reclaimed and counted once, and none of the others.
func TestEveryEndOfEveryBuffer(t *testing.T) {
	_, err := NewEnclaveRandom(32) // the process key's Coffer, first
	require.NoError(t, err)
	buffers.sweepYoung()
	collectGarbage()
	base := Stats()

	stop := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				buffers.sweepYoung()
				runtime.Gosched()
			}
		}
	})
	var dropped atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var kept [][]Buffer
			for i := range 800 {
				b, err := bufferMakers[(g+i)%len(bufferMakers)]()
				if err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					buffers.sweepYoung() // old, with its cleanup, before it ends
				}
				switch i % 6 {
				case 0:
					assert.NoError(t, b.Destroy())
				case 1:
					dropped.Add(1)
				case 2:
					*b = Buffer{}
					dropped.Add(1)
				case 3:
					_, err := b.Seal()
					assert.NoError(t, err)
				case 4:
					c := make([]Buffer, 1)
					reflect.ValueOf(&c[0]).Elem().Set(reflect.ValueOf(b).Elem()) // c[0] = *b, which go vet reports
					kept = append(kept, c)
					dropped.Add(1)
				case 5:
					c := make([]Buffer, 1)
					reflect.ValueOf(&c[0]).Elem().Set(reflect.ValueOf(b).Elem())
					assert.NoError(t, c[0].Destroy())
				}
				if len(kept) > 20 {
					kept = kept[:0]
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sweeper.Wait()
	untilTrue(t, time.Minute, func() bool {
		runtime.GC()
		s := Stats()
		return s.Reclaimed-base.Reclaimed == int(dropped.Load()) && s.LiveBuffers == base.LiveBuffers
	})
	buffers.sweepYoung()
	collectGarbage()
	assert.Equal(t, int(dropped.Load()), Stats().Reclaimed-base.Reclaimed, "nothing counted twice")
}

// Destroy keeps its handle reachable until the Buffer is dead: a
// collection while Destroy runs neither lets the handle's cleanup count
// the Buffer as leaked nor takes from Destroy the error it reports.
func TestDestroyKeepsItsHandle(t *testing.T) {
	hook := func(point string) {
		if point == "destroy" {
			collectGarbage()
		}
	}
	testHook.Store(&hook)
	defer testHook.Store(nil)

	for _, opts := range [][]Option{nil, {Compact()}} {
		b, err := NewBuffer(32, opts...)
		require.NoError(t, err)
		buffers.sweepYoung() // b's cleanup is in place
		base := Stats()
		require.NoError(t, b.Destroy()) // b's last use
		assert.Equal(t, base.LiveBuffers-1, Stats().LiveBuffers)
		assert.Equal(t, base.Reclaimed, Stats().Reclaimed, "a destroyed Buffer counted as leaked")
	}

	b, err := NewBuffer(20)
	require.NoError(t, err)
	buffers.sweepYoung()
	corruptions["tail canary"](b.region)
	assert.ErrorIs(t, b.Destroy(), ErrCanaryCorrupt)
}
