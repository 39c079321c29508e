package memguard

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// at is the byte i bytes from the start of s's data; i may be negative
// (the lead canary) or past the secret (padding and tail canary).
func (s *slot) at(i int) *byte {
	return (*byte)(unsafe.Add(unsafe.Pointer(s.m.data), i))
}

// checkedOffsets are the offsets from the data of every byte the canary
// checks cover: the lead canary, the padding and the tail canary.
func (s *slot) checkedOffsets() []int {
	var offs []int
	for i := -canaryLen; i < 0; i++ {
		offs = append(offs, i)
	}
	for i := int(s.m.size); i < int(s.m.cap)+canaryLen; i++ {
		offs = append(offs, i)
	}
	return offs
}

func mustSlot(t testing.TB, size int, flags mapFlags) *slot {
	t.Helper()
	s, err := allocSlot(size, flags)
	require.NoError(t, err)
	return s
}

// adjacentSlots allocates slots of size until two follow each other in a
// chunk, sharing a canary, and frees the others. The caller's goroutine is
// locked to its thread, so every allocation draws from one shard.
func adjacentSlots(t *testing.T, size int) (*slot, *slot) {
	t.Helper()
	return adjacent(t,
		func() *slot { return mustSlot(t, size, mapLock) },
		func(s *slot) *slot { return s },
		func(s *slot) error { return s.free() })
}

// adjacent makes values until the slots of the last two follow each other
// in a chunk, and frees the others.
func adjacent[T any](t *testing.T, alloc func() T, slotOf func(T) *slot, free func(T) error) (T, T) {
	t.Helper()
	var held []T
	defer func() {
		for _, v := range held[:len(held)-2] {
			require.NoError(t, free(v))
		}
	}()
	for {
		held = append(held, alloc())
		if n := len(held); n > 1 {
			p, s := slotOf(held[n-2]).m, slotOf(held[n-1]).m
			if s.chunk == p.chunk && s.index == p.index+1 {
				return held[n-2], held[n-1]
			}
		}
	}
}

// The Go check and the core's agree for every size and so every class:
// intact, with the secret overwritten, and with each checked byte changed
// on its own; and the layout is as the core documents it.
func TestSlotCanaryIntactMatchesCore(t *testing.T) {
	for size := 1; size <= slotMax; size++ {
		s := mustSlot(t, size, mapLock)
		cap := 32
		for cap < size {
			cap *= 2
		}
		require.Equal(t, cap, int(s.m.cap), "size %d", size)
		require.Equal(t, size, len(s.bytes()))
		require.Zero(t, uintptr(unsafe.Pointer(s.m.data))%16, "aligned")
		require.Equal(t, make([]byte, size), s.bytes(), "zeroed")
		require.True(t, s.canaryIntact(), "size %d", size)
		require.NoError(t, s.verify())
		for i := range s.bytes() {
			s.bytes()[i] = 0xA5
		}
		require.True(t, s.canaryIntact(), "the secret itself is not checked")
		require.NoError(t, s.verify())

		for _, off := range s.checkedOffsets() {
			b := s.at(off)
			*b ^= 0x01
			goCheck, coreCheck := s.canaryIntact(), s.verify()
			*b ^= 0x01
			require.False(t, goCheck, "size %d, byte %d", size, off)
			require.ErrorIs(t, coreCheck, ErrCanaryCorrupt, "size %d, byte %d", size, off)
		}
		require.True(t, s.canaryIntact())
		require.NoError(t, s.verify())
		require.NoError(t, s.free())
	}
}

// A write past one slot's end reaches the next slot's lead canary, which
// is the first one's tail canary: both see it, from Go and from the core.
// A write before the second slot's start is seen the same way.
func TestSlotOverflowSeenFromBoth(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, size := range []int{20, 32, 100, 256} {
		p, s := adjacentSlots(t, size)
		require.Equal(t, s.at(-canaryLen), p.at(int(p.m.cap)), "p's tail canary is s's lead")
		for _, b := range []*byte{p.at(int(p.m.cap)), s.at(-1)} {
			*b ^= 0x80
			assert.False(t, p.canaryIntact(), "size %d", size)
			assert.False(t, s.canaryIntact(), "size %d", size)
			assert.ErrorIs(t, p.verify(), ErrCanaryCorrupt)
			assert.ErrorIs(t, s.verify(), ErrCanaryCorrupt)
			*b ^= 0x80
			assert.True(t, p.canaryIntact() && s.canaryIntact())
		}
		// Freed broken: reported, and the neighbour still sees it.
		*s.at(-canaryLen) ^= 0x80
		assert.ErrorIs(t, p.free(), ErrCanaryCorrupt)
		assert.Nil(t, p.m.data, "freed all the same")
		assert.NoError(t, p.free(), "a freed slot is zero: freeing it again does nothing")
		assert.ErrorIs(t, s.verify(), ErrCanaryCorrupt)
		*s.at(-canaryLen) ^= 0x80
		assert.True(t, s.canaryIntact())
		require.NoError(t, s.free())
	}
}

// Freeing wipes the secret and the padding, not the canaries; wipe clears
// the secret only.
func TestSlotWipe(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, next := adjacentSlots(t, 20) // next keeps the chunk mapped
	defer func() { require.NoError(t, next.free()) }()
	copy(s.bytes(), pattern(20))
	s.wipe()
	assert.Equal(t, make([]byte, 20), s.bytes())
	assert.True(t, s.canaryIntact())

	copy(s.bytes(), pattern(20))
	data, cap := s.at(0), int(s.m.cap)
	lead := *(*[canaryLen]byte)(unsafe.Pointer(s.at(-canaryLen)))
	require.NoError(t, s.free())
	assert.Equal(t, make([]byte, cap), unsafe.Slice(data, cap), "data and padding")
	assert.Equal(t, lead, *(*[canaryLen]byte)(unsafe.Add(unsafe.Pointer(data), -canaryLen)))
	assert.True(t, next.canaryIntact())
}

func TestSlotInvalid(t *testing.T) {
	for _, size := range []int{-1, 0, slotMax + 1} {
		s, err := allocSlot(size, mapLock)
		assert.ErrorIs(t, err, ErrInvalidSize)
		assert.Nil(t, s)
	}
	s := mustSlot(t, 8, mapLock)
	held := s.m
	var forged slot
	forged.m = held
	forged.m.size = 9
	assert.ErrorIs(t, forged.free(), ErrInvalidArgument, "the wrong size")
	assert.True(t, s.canaryIntact(), "nothing changed")
	require.NoError(t, s.free())
	forged.m = held
	assert.ErrorIs(t, forged.free(), ErrInvalidArgument, "freed already")
}

// Each kind of arena, locked, unlocked and (where the system has it)
// secret memory, in a set of its own, whose usage the core counts.
func TestSlotKinds(t *testing.T) {
	for _, tc := range []struct {
		flags          mapFlags
		locked, secret bool
	}{
		{mapLock, true, false},
		{0, false, false},
		{mapSecret, true, true},
		{mapSecret | mapLock, true, true},
	} {
		var set arenaSet
		var s slot
		err := set.alloc(&s, 100, tc.flags)
		if tc.secret && errors.Is(err, errors.ErrUnsupported) {
			t.Logf("no secret memory here: %v", err)
			require.NoError(t, set.destroy())
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.secret, s.secretMemory(), "flags %d", tc.flags)
		u := set.usage()
		assert.Equal(t, 1, u.chunks)
		assert.Equal(t, 1, u.live)
		if tc.locked {
			assert.Equal(t, 128+canaryLen, s.lockedBytes())
			assert.Equal(t, int(pageSize), u.locked, "one page: the first chunk")
		} else {
			assert.Zero(t, s.lockedBytes())
			assert.Zero(t, u.locked)
		}
		copy(s.bytes(), pattern(100))
		assert.True(t, s.canaryIntact())
		*s.at(100) ^= 1 // the padding
		assert.ErrorIs(t, s.free(), ErrCanaryCorrupt)
		u = set.usage()
		assert.Equal(t, 0, u.live)
		assert.Equal(t, 1, u.quarantined)
		require.NoError(t, set.destroy())
		assert.Equal(t, arenaUsage{}, set.usage())
	}
}

// The arenas are made once, however many goroutines ask at once.
func TestArenaSetConcurrent(t *testing.T) {
	var set arenaSet
	defer func() { require.NoError(t, set.destroy()) }()
	const n = 16
	got := make([][numArenaKinds]unsafe.Pointer, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for g := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			for k := range numArenaKinds {
				a, err := set.get(arenaFlags[k])
				assert.NoError(t, err)
				got[g][k] = unsafe.Pointer(a)
			}
		}()
	}
	start.Done()
	done.Wait()
	for k := range numArenaKinds {
		assert.NotNil(t, got[0][k])
		for g := range n {
			assert.Equal(t, got[0][k], got[g][k], "goroutine %d, kind %d", g, k)
		}
	}
	assert.NotEqual(t, got[0][arenaLocked], got[0][arenaUnlocked])
}

// Many goroutines allocate, fill, check and free, and hand slots to each
// other to free, while their neighbours in the chunks change.
func TestSlotConcurrent(t *testing.T) {
	const goroutines, rounds = 16, 2000
	handoff := make(chan *slot, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				size := 1 + (g*rounds+i)*7%slotMax
				s, err := allocSlot(size, mapLock)
				if !assert.NoError(t, err) {
					return
				}
				for j := range s.bytes() {
					s.bytes()[j] = byte(size)
				}
				select {
				case handoff <- s:
					s = <-handoff
				default:
				}
				ok := s.canaryIntact()
				for _, c := range s.bytes() {
					ok = ok && c == byte(s.m.size)
				}
				assert.True(t, ok, "size %d", s.m.size)
				assert.NoError(t, s.free())
			}
		}()
	}
	wg.Wait()
	close(handoff)
	for s := range handoff {
		assert.NoError(t, s.free())
	}
}

// BenchmarkSlotAllocFree is allocSlot(32)+free from each of 1 and 2
// goroutines at once; ns/op is wall time over all of them.
func BenchmarkSlotAllocFree(b *testing.B) {
	for _, goroutines := range []int{1, 2} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			b.ReportAllocs()
			runSplit(b, goroutines, func() error {
				s, err := allocSlot(32, mapLock)
				if err != nil {
					return err
				}
				return s.free()
			})
		})
	}
}

// runSplit runs op b.N times in all, shared among goroutines running at
// once, and stops a goroutine at its first error.
func runSplit(b *testing.B, goroutines int, op func() error) {
	var wg sync.WaitGroup
	for g := range goroutines {
		n := b.N / goroutines
		if g == 0 {
			n += b.N % goroutines
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
