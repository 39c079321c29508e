package memguard

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mustCompact is a new compact Buffer of size bytes filled with pattern.
func mustCompact(t *testing.T, size int) *Buffer {
	t.Helper()
	b, err := NewBufferFromBytes(pattern(size), Compact())
	require.NoError(t, err)
	require.True(t, b.compact)
	return b
}

// Every Buffer method on a compact Buffer, alive and destroyed.
func TestCompactMethods(t *testing.T) {
	_, err := NewEnclave(pattern(1)) // the process key, a live Buffer, exists from here on
	require.NoError(t, err)
	for _, size := range []int{1, 16, 31, 32, 33, 64, 100, 255, 256} {
		liveBefore, compactBefore := Stats().LiveBuffers, Stats().CompactBuffers
		b, err := NewBuffer(size, Compact())
		require.NoError(t, err, size)
		assert.True(t, b.compact)
		assert.Nil(t, b.region, "no region of its own")
		assert.Equal(t, liveBefore+1, Stats().LiveBuffers)
		assert.Equal(t, compactBefore+1, Stats().CompactBuffers)
		assert.Equal(t, size, b.Size())
		assert.True(t, b.Alive())
		assert.True(t, b.Mutable())
		assert.True(t, b.Locked())
		assert.Equal(t, make([]byte, size), read(t, b), "zero-filled")

		require.NoError(t, b.WithDataMut(func(d []byte) error { copy(d, pattern(size)); return nil }))
		ok, err := b.EqualTo(pattern(size))
		assert.True(t, ok)
		assert.NoError(t, err)
		require.NoError(t, b.Verify())
		require.NoError(t, b.Scramble())
		require.NoError(t, b.Wipe())
		assert.Equal(t, make([]byte, size), read(t, b))
		require.NoError(t, b.WithDataMut(func(d []byte) error { copy(d, pattern(size)); return nil }))

		// Freeze is the API's: writes through it are refused, though the
		// page stays writable for the neighbours.
		require.NoError(t, b.Freeze())
		assert.False(t, b.Mutable())
		assert.ErrorIs(t, b.WithDataMut(func([]byte) error { t.Fatal("called"); return nil }), ErrImmutable)
		assert.ErrorIs(t, b.Scramble(), ErrImmutable)
		assert.ErrorIs(t, b.Wipe(), ErrImmutable)
		assert.Equal(t, pattern(size), read(t, b))
		assert.Contains(t, b.String(), "frozen")
		require.NoError(t, b.Melt())
		assert.True(t, b.Mutable())
		require.NoError(t, b.Wipe())
		require.NoError(t, b.WithDataMut(func(d []byte) error { copy(d, pattern(size)); return nil }))

		e, err := b.Seal()
		require.NoError(t, err)
		assert.False(t, b.Alive(), "sealed: destroyed")
		assert.Equal(t, compactBefore, Stats().CompactBuffers)
		o, err := e.Open(Compact())
		require.NoError(t, err)
		assert.True(t, o.compact)
		assert.Equal(t, pattern(size), read(t, o))
		require.NoError(t, o.Destroy())
		require.NoError(t, o.Destroy(), "destroying again does nothing")

		assert.ErrorIs(t, o.WithData(func([]byte) error { return nil }), ErrDestroyed)
		assert.ErrorIs(t, o.Verify(), ErrDestroyed)
		assert.ErrorIs(t, o.Freeze(), ErrDestroyed)
		assert.False(t, o.Locked())
		assert.Zero(t, o.Size())
		assert.Equal(t, liveBefore, Stats().LiveBuffers)
		assert.Equal(t, compactBefore, Stats().CompactBuffers)
	}
}

func TestCompactSizes(t *testing.T) {
	for _, size := range []int{-1, 0, slotMax + 1, 1 << 20} {
		b, err := NewBuffer(size, Compact())
		assert.ErrorIs(t, err, ErrInvalidSize, "size %d", size)
		assert.Nil(t, b)
	}
	_, err := NewBuffer(slotMax+1, Compact())
	assert.ErrorContains(t, err, "at most 256 bytes")
	_, err = NewBufferFromBytes(pattern(slotMax+1), Compact())
	assert.ErrorIs(t, err, ErrInvalidSize)
	e, err := NewEnclave(pattern(slotMax + 1))
	require.NoError(t, err)
	_, err = e.Open(Compact())
	assert.ErrorIs(t, err, ErrInvalidSize)

	// From the defaults, a secret no slot holds gets a region.
	withDefaults(t, Compact())
	for size, compact := range map[int]bool{1: true, 256: true, 257: false, 5000: false} {
		b, err := NewBuffer(size)
		require.NoError(t, err)
		assert.Equal(t, compact, b.compact, "size %d", size)
		assert.Equal(t, !compact, b.region != nil, "size %d", size)
		require.NoError(t, b.Destroy())
	}
	b, err := e.Open()
	require.NoError(t, err)
	assert.False(t, b.compact)
	require.NoError(t, b.Destroy())
}

// adjacentCompact makes compact Buffers of size until two sit side by side
// in a chunk, sharing a canary, and destroys the others. The caller's
// goroutine is locked to its thread, so every slot comes from one shard.
func adjacentCompact(t *testing.T, size int) (*Buffer, *Buffer) {
	t.Helper()
	return adjacent(t,
		func() *Buffer { return mustCompact(t, size) },
		func(b *Buffer) *slot { return &b.arenaSlot },
		(*Buffer).Destroy)
}

// An overflow from one compact secret into its neighbour is
// ErrCanaryCorrupt on the next access to either, by WithData, Verify and
// Destroy, and counted once per Buffer.
func TestCompactOverflowIntoNeighbour(t *testing.T) {
	lockThread(t)
	for _, size := range []int{20, 32, 64, 200} {
		for _, access := range []string{"WithData", "Verify", "Destroy"} {
			p, s := adjacentCompact(t, size)
			failures := Stats().CanaryFailures
			require.NoError(t, p.Melt())
			// One byte past p's slot: the canary between the two.
			require.NoError(t, p.WithDataMut(func(d []byte) error {
				past := unsafe.Slice(unsafe.SliceData(d), int(p.arenaSlot.m.cap)+1)
				past[len(past)-1] ^= 0x40
				return nil
			}), "the write itself is not checked afterwards")
			for _, b := range []*Buffer{p, s} {
				var err error
				switch access {
				case "WithData":
					err = b.WithData(func([]byte) error { t.Fatal("called"); return nil })
				case "Verify":
					err = b.Verify()
				case "Destroy":
					err = b.Destroy()
					assert.False(t, b.Alive(), "destroyed all the same")
				}
				assert.ErrorIs(t, err, ErrCanaryCorrupt, "size %d, %s", size, access)
			}
			assert.Equal(t, failures+2, Stats().CanaryFailures)
			p.Destroy()
			s.Destroy()
		}
	}
}

// Purge wipes and frees compact Buffers, idle or in use, and trims the
// arenas: nothing stays locked for them.
func TestPurgeCompact(t *testing.T) {
	lockThread(t)
	Purge()
	// A slot that is no Buffer, which Purge leaves alone, keeps the chunk
	// mapped, so the bytes of the Buffers beside it can be read after.
	keeper := mustSlot(t, 32, mapLock)
	var bufs []*Buffer
	var freed [][]byte
	for range 20 {
		b := mustCompact(t, 32)
		bufs = append(bufs, b)
		if b.arenaSlot.m.chunk == keeper.m.chunk {
			freed = append(freed, unsafe.Slice((*byte)(unsafe.Pointer(b.arenaSlot.m.data)), 32))
		}
	}
	require.NotEmpty(t, freed)
	busy := bufs[0]
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- busy.WithData(func(d []byte) error {
			close(inside)
			<-release
			assert.Equal(t, make([]byte, 32), d, "wiped under its reader")
			return nil
		})
	}()
	<-inside
	assert.Equal(t, 20, Stats().CompactBuffers)
	Purge()
	close(release)
	assert.ErrorIs(t, <-done, ErrDestroyed)
	for _, b := range bufs {
		assert.False(t, b.Alive())
	}
	for _, d := range freed {
		assert.Equal(t, make([]byte, 32), d, "wiped")
	}
	assert.Zero(t, Stats().CompactBuffers)
	assert.Zero(t, Stats().LiveBuffers)
	require.NoError(t, keeper.free())
	Purge()
	assert.Zero(t, Stats().LockedBytes, "spare chunks trimmed")
	assert.Zero(t, compactArenas.usage().chunks)
}

// lockThread keeps the test's goroutine on its thread, so that every slot
// it allocates comes from one arena shard.
func lockThread(t *testing.T) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// SecretMemory with Compact: the slot is in secret memory where the system
// has it, or (AllowFallback) an ordinary locked slot where it does not.
func TestCompactSecretMemory(t *testing.T) {
	b, err := NewBuffer(32, Compact(), SecretMemory())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Logf("no secret memory here: %v", err)
		fallbacks := Stats().SecretMemoryFallbacks
		b, err = NewBuffer(32, Compact(), SecretMemory(), AllowFallback())
		require.NoError(t, err)
		assert.Equal(t, fallbacks+1, Stats().SecretMemoryFallbacks)
		assert.False(t, b.arenaSlot.secretMemory())
		require.NoError(t, b.Destroy())
		return
	}
	require.NoError(t, err)
	secret := Stats().SecretMemoryBuffers
	assert.True(t, b.arenaSlot.secretMemory())
	assert.True(t, b.Locked())
	require.NoError(t, b.Destroy())
	assert.Equal(t, secret-1, Stats().SecretMemoryBuffers)
}

// The lock policies act on compact Buffers as on regions.
func TestCompactLockPolicy(t *testing.T) {
	defer SetLockPolicy(LockRequired)
	SetLockPolicy(LockDisabled)
	unlocked := Stats().UnlockedBuffers
	b, err := NewBuffer(32, Compact())
	require.NoError(t, err)
	assert.False(t, b.Locked())
	assert.Equal(t, unlocked+1, Stats().UnlockedBuffers)
	require.NoError(t, b.Destroy())
	assert.Equal(t, unlocked, Stats().UnlockedBuffers)
}

// LockedBytes counts the arenas' chunks whole: a compact Buffer made in an
// empty arena adds one page.
func TestCompactLockedBytes(t *testing.T) {
	Purge()
	before := Stats().LockedBytes
	b := mustCompact(t, 32)
	assert.Equal(t, before+int(pageSize), Stats().LockedBytes)
	require.NoError(t, b.Destroy())
	Purge()
	assert.Equal(t, before, Stats().LockedBytes)
}

// Seal, Open, Stream and the readers with Compact as the default.
func TestCompactDefaults(t *testing.T) {
	withDefaults(t, Compact())
	e, err := NewEnclave(pattern(64))
	require.NoError(t, err)
	b, err := e.Open()
	require.NoError(t, err)
	assert.True(t, b.compact)
	assert.Equal(t, pattern(64), read(t, b))
	require.NoError(t, b.Destroy())

	r, err := NewEnclaveRandom(32)
	require.NoError(t, err)
	assert.Equal(t, 32, r.Size())

	s := NewStream(WithChunkSize(100))
	n, err := s.Write(pattern(1000))
	require.NoError(t, err)
	assert.Equal(t, 1000, n)
	got := make([]byte, 150)
	n, err = s.Read(got)
	require.NoError(t, err)
	assert.Equal(t, pattern(1000)[:150], got[:n])
	next, err := s.Next()
	require.NoError(t, err)
	assert.True(t, next.compact)
	require.NoError(t, next.Destroy())
	all, err := s.Flush()
	require.NoError(t, err)
	assert.False(t, all.compact, "800 bytes: a region")
	assert.Equal(t, pattern(1000)[200:], read(t, all))
	require.NoError(t, all.Destroy())

	fr, err := NewBufferFromReader(bytes.NewReader(pattern(40)), 40)
	require.NoError(t, err)
	assert.True(t, fr.compact)
	require.NoError(t, fr.Destroy())
	er, err := NewBufferFromEntireReader(io.LimitReader(bytes.NewReader(pattern(300)), 200))
	require.NoError(t, err)
	assert.True(t, er.compact)
	assert.Equal(t, pattern(200), read(t, er))
	require.NoError(t, er.Destroy())
}

// Readers, writers, Destroy and Purge race on compact Buffers; run with
// -race. Every call either works or reports ErrDestroyed.
func TestCompactRaces(t *testing.T) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				b, err := NewBufferFromBytes(pattern(1+i%slotMax), Compact())
				if errors.Is(err, ErrDestroyed) {
					continue
				}
				if !assert.NoError(t, err) {
					return
				}
				var inner sync.WaitGroup
				for range 2 {
					inner.Add(1)
					go func() {
						defer inner.Done()
						err := b.WithData(func(d []byte) error { _ = d[0]; return nil })
						if err != nil {
							assert.ErrorIs(t, err, ErrDestroyed)
						}
					}()
				}
				if i%7 == 0 {
					Purge()
				}
				assert.NoError(t, b.Destroy())
				inner.Wait()
			}
		}()
	}
	wg.Wait()
}
