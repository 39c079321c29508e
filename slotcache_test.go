//go:build cgo

package memguard

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// len is the number of slots the cache holds.
func (c *slotCache) len() (n int) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for kind := range sh.lists {
			for k := range sh.lists[kind] {
				n += sh.lists[kind][k].n
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// A slot a secret filled is cached wiped, with its canaries, and handed
// out again holding zeros; flush gives it back to its arena.
func TestSlotCacheReusesFilledSlots(t *testing.T) {
	var set arenaSet
	defer set.destroy()
	for _, size := range []int{32, 64, 128, 256} {
		var s slot
		require.NoError(t, set.alloc(&s, size, mapLock))
		copy(s.bytes(), bytes.Repeat([]byte{0xa5}, size))
		data := unsafe.Pointer(s.m.data)
		live := set.usage().live

		require.True(t, set.cache.give(&s), "size %d", size)
		assert.False(t, s.held(), "the Buffer's slot is zero once cached")
		assert.Equal(t, 1, set.cache.len())
		assert.Equal(t, make([]byte, size), unsafe.Slice((*byte)(data), size), "wiped when cached")
		assert.Equal(t, live, set.usage().live, "still allocated in the arena")

		var again slot
		if set.cache.take(&again, size, arenaLocked) { // unless the goroutine moved to another processor's shard
			assert.Equal(t, data, unsafe.Pointer(again.m.data))
			assert.Equal(t, make([]byte, size), again.bytes())
			assert.True(t, again.canaryIntact())
			require.NoError(t, again.verify(), "the core agrees")
			require.True(t, set.cache.give(&again))
		}
		n, err := set.cache.flush()
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Zero(t, set.cache.len())
		assert.Equal(t, live-1, set.usage().live, "freed in the arena")
	}
}

// The cache leaves to the core what only the core can free correctly: a
// secret shorter than its slot (its padding is canary bytes), and a slot
// whose canaries are broken, which the core quarantines and reports.
func TestSlotCacheRefuses(t *testing.T) {
	var set arenaSet
	defer set.destroy()

	var short slot
	require.NoError(t, set.alloc(&short, 20, mapLock))
	before := short.m
	assert.False(t, set.cache.give(&short))
	assert.Equal(t, before, short.m, "left as it was")
	require.NoError(t, short.free())

	var broken slot
	require.NoError(t, set.alloc(&broken, 32, mapLock))
	past := unsafe.Slice((*byte)(unsafe.Pointer(broken.m.data)), 33)
	past[32] ^= 1 // the tail canary
	assert.False(t, set.cache.give(&broken))
	assert.ErrorIs(t, broken.free(), ErrCanaryCorrupt)
	assert.Equal(t, 1, set.usage().quarantined)
	assert.Zero(t, set.cache.len())
}

// A shard caches at most slotCacheDepth slots of a kind and capacity; the
// rest go back to the core.
func TestSlotCacheDepth(t *testing.T) {
	lockThread(t)
	var set arenaSet
	defer set.destroy()
	slots := make([]slot, 4*slotCacheDepth)
	for i := range slots {
		require.NoError(t, set.alloc(&slots[i], 32, mapLock))
	}
	for i := range slots {
		if !set.cache.give(&slots[i]) {
			require.NoError(t, slots[i].free())
		}
	}
	assert.LessOrEqual(t, set.cache.len(), slotCacheShards*slotCacheDepth)
	n, err := set.cache.flush()
	require.NoError(t, err)
	assert.Zero(t, set.usage().live, "%d cached slots given back, the rest freed", n)
}

// Purge gives the cached slots back: nothing stays locked for compact
// secrets that are gone.
func TestPurgeFlushesSlotCache(t *testing.T) {
	Purge()
	for range 100 {
		b, err := NewBufferRandom(32, Compact())
		require.NoError(t, err)
		require.NoError(t, b.Destroy())
	}
	assert.Positive(t, compactArenas.cache.len(), "a destroyed full slot is cached")
	Purge()
	assert.Zero(t, compactArenas.cache.len())
	assert.Zero(t, compactArenas.usage().live)
	assert.Zero(t, compactArenas.usage().locked)
}

// Goroutines making and destroying compact secrets through the cache,
// while Purge and trims give it back, never find a secret that is not
// their own, nor a slot that is not zero when new.
func TestSlotCacheRaces(t *testing.T) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := compactArenas.trim(); err != nil {
					t.Error(err)
				}
			}
		}
	})
	var workers sync.WaitGroup
	for g := range 4 {
		workers.Go(func() {
			mine := bytes.Repeat([]byte{byte(g + 1)}, 64)
			for i := range 3000 {
				b, err := NewBuffer(64, Compact())
				if err != nil {
					t.Error(err)
					return
				}
				err = b.WithDataMut(func(d []byte) error {
					if !bytes.Equal(d, make([]byte, 64)) {
						t.Errorf("goroutine %d: a new slot holds %x", g, d)
					}
					copy(d, mine)
					return nil
				})
				if err == nil {
					if ok, err := b.EqualTo(mine); err == nil && !ok {
						t.Errorf("goroutine %d: another secret in my slot", g)
					}
				}
				if i%500 == 0 {
					Purge()
				}
				b.Destroy()
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()
}

// A Buffer, compact or not, that Purge wiped under its reader is freed,
// when the reader leaves, to no cache, and with the arenas' spare chunks:
// once nothing is live, nothing stays locked.
func TestPurgedBufferLeavesNothingLocked(t *testing.T) {
	for _, opts := range [][]Option{{Compact()}, nil} {
		Purge()
		require.Zero(t, Stats().LockedBytes)
		b, err := NewBufferRandom(32, opts...)
		require.NoError(t, err)
		inside, release := make(chan struct{}), make(chan struct{})
		done := make(chan error)
		go func() {
			done <- b.WithData(func([]byte) error {
				close(inside)
				<-release
				return nil
			})
		}()
		<-inside
		Purge()
		close(release)
		assert.ErrorIs(t, <-done, ErrDestroyed)
		untilTrue(t, time.Minute, func() bool {
			s := Stats()
			return s.LiveBuffers == 0 && s.LockedBytes == 0
		})
		assert.Zero(t, compactArenas.cache.len())
		assert.Zero(t, Stats().CachedRegions)
	}
}

// Locked memory that compact secrets no longer use is released within a
// moment of their release, without a Purge: the cached slot, and the
// chunk the core keeps empty for reuse, for a secret that filled its slot
// and one that did not.
func TestArenasTrimThemselves(t *testing.T) {
	var set arenaSet
	defer set.destroy()
	for _, size := range []int{32, 20} {
		var s slot
		require.NoError(t, set.alloc(&s, size, mapLock))
		require.Positive(t, set.usage().locked)
		require.NoError(t, set.release(&s, true))
		untilTrue(t, time.Minute, func() bool {
			u := set.usage()
			return set.cache.len() == 0 && u.live == 0 && u.locked == 0
		})
	}

	// The same through the package's own arenas and a Buffer.
	Purge()
	b, err := NewBuffer(32, Compact())
	require.NoError(t, err)
	require.NoError(t, b.Destroy())
	untilTrue(t, time.Minute, func() bool { return Stats().LockedBytes == 0 })
}

// Making and destroying a compact secret that fills its slot allocates
// only its state and handle, and, with the cache warm, seldom calls into
// the core: the young lists, the cache and their timers add nothing per
// secret. (Under the race detector sync.Pool forgets a quarter of what it
// is given, so some takes miss and allocate from the core.)
func TestCompactNewDestroyCost(t *testing.T) {
	Purge() // stops the coffers' re-keying, whose cgo calls would count
	makeDestroy := func() {
		b, err := NewBuffer(32, Compact())
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	makeDestroy()
	const runs = 1000
	calls := runtime.NumCgoCall()
	allocs := testing.AllocsPerRun(runs, makeDestroy)
	perOp := float64(runtime.NumCgoCall()-calls) / runs
	assert.LessOrEqual(t, allocs, 2.0, "the state and the handle")
	assert.Less(t, perOp, 0.5, "cgo calls per secret made and destroyed (two without the cache)")
}
