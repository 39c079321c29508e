package memguard

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSizes straddle the alignment, one data page (page-16 bytes is the
// most that fits beside the leading canary), the cipher switch at
// xaesMinSize, and more than one page.
var testSizes = func() []int {
	p := int(pageSize)
	sizes := []int{1, 15, 16, 17, 31, 32, 33, 100,
		p - 17, p - 16, p - 15, p - 1, p, p + 1, 2 * p,
		xaesMinSize - 1, xaesMinSize, xaesMinSize + 1, 3<<20 + 1}
	slices.Sort(sizes)
	return slices.Compact(sizes)
}()

// read copies a Buffer's data out, for assertions only.
func read(t *testing.T, b *Buffer) []byte {
	t.Helper()
	var out []byte
	require.NoError(t, b.WithData(func(d []byte) error {
		out = append([]byte(nil), d...)
		return nil
	}))
	return out
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return p
}

func TestNewBufferSizes(t *testing.T) {
	for _, n := range testSizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b, err := NewBuffer(n)
			require.NoError(t, err)
			defer b.Destroy()
			assert.Equal(t, n, b.Size())
			assert.True(t, b.Alive())
			assert.True(t, b.Mutable())
			assert.Equal(t, make([]byte, n), read(t, b), "zero-filled")
			want := pattern(n)
			require.NoError(t, b.WithDataMut(func(d []byte) error {
				require.Len(t, d, n)
				copy(d, want)
				return nil
			}))
			assert.Equal(t, want, read(t, b))
			require.NoError(t, b.WithData(func(d []byte) error {
				assert.Zero(t, uintptrOf(d)%16, "data is 16-byte aligned")
				return nil
			}))
			assert.NoError(t, b.Verify())
			assert.NoError(t, b.Destroy())
			assert.False(t, b.Alive())
			assert.Zero(t, b.Size())
		})
	}
}

func TestInvalidSizes(t *testing.T) {
	for _, n := range []int{0, -1, -4096, -1 << 62} {
		for name, ctor := range map[string]func(int) (*Buffer, error){
			"NewBuffer":       func(n int) (*Buffer, error) { return NewBuffer(n) },
			"NewBufferRandom": func(n int) (*Buffer, error) { return NewBufferRandom(n) },
			"NewBufferFromReader": func(n int) (*Buffer, error) {
				return NewBufferFromReader(bytes.NewReader(nil), n)
			},
		} {
			b, err := ctor(n)
			assert.ErrorIs(t, err, ErrInvalidSize, "%s(%d)", name, n)
			assert.Nil(t, b, "%s(%d)", name, n)
		}
	}
	before := Stats().LiveBuffers
	b, err := NewBufferFromBytes(nil)
	assert.ErrorIs(t, err, ErrInvalidSize)
	assert.Nil(t, b)
	b, err = NewBufferFromBytes([]byte{})
	assert.ErrorIs(t, err, ErrInvalidSize)
	assert.Nil(t, b)
	assert.Equal(t, before, Stats().LiveBuffers, "failed constructors leave nothing live")
}

func TestHugeSizeIsOutOfMemory(t *testing.T) {
	// Valid arithmetic, but no kernel maps 1 PiB, let alone MaxInt bytes.
	for _, n := range []int{1 << 50, int(^uint(0) >> 1)} {
		b, err := NewBuffer(n)
		assert.ErrorIs(t, err, ErrOutOfMemory)
		assert.ErrorIs(t, err, syscall.ENOMEM)
		assert.Nil(t, b)
		assert.Contains(t, err.Error(), "vm.max_map_count")
	}
}

func TestNewBufferFromBytes(t *testing.T) {
	for _, n := range testSizes {
		src := pattern(n)
		want := append([]byte(nil), src...)
		b, err := NewBufferFromBytes(src)
		require.NoError(t, err)
		assert.Equal(t, make([]byte, n), src, "source wiped")
		assert.False(t, b.Mutable(), "frozen")
		assert.Equal(t, want, read(t, b))
		ok, err := b.EqualTo(want)
		assert.NoError(t, err)
		assert.True(t, ok)
		require.NoError(t, b.Destroy())
	}
}

func TestNewBufferRandom(t *testing.T) {
	a, err := NewBufferRandom(64)
	require.NoError(t, err)
	defer a.Destroy()
	b, err := NewBufferRandom(64)
	require.NoError(t, err)
	defer b.Destroy()
	assert.False(t, a.Mutable())
	assert.NotEqual(t, read(t, a), read(t, b))
	assert.NotEqual(t, make([]byte, 64), read(t, a))
}

func TestWithDataReturnsCallbackError(t *testing.T) {
	b, err := NewBuffer(8)
	require.NoError(t, err)
	defer b.Destroy()
	sentinel := errors.New("mine")
	assert.Same(t, sentinel, b.WithData(func([]byte) error { return sentinel }))
	assert.Same(t, sentinel, b.WithDataMut(func([]byte) error { return sentinel }))
	assert.ErrorIs(t, b.WithData(nil), ErrInvalidArgument)
	assert.ErrorIs(t, b.WithDataMut(nil), ErrInvalidArgument)
}

func TestFrozen(t *testing.T) {
	b, err := NewBuffer(32)
	require.NoError(t, err)
	defer b.Destroy()
	require.NoError(t, b.Freeze())
	require.NoError(t, b.Freeze(), "idempotent")
	assert.False(t, b.Mutable())
	assert.True(t, b.Alive())
	called := false
	mark := func([]byte) error { called = true; return nil }
	assert.ErrorIs(t, b.WithDataMut(mark), ErrImmutable)
	assert.False(t, called)
	assert.ErrorIs(t, b.Scramble(), ErrImmutable)
	assert.ErrorIs(t, b.Wipe(), ErrImmutable)
	assert.NoError(t, b.WithData(mark), "still readable")
	assert.True(t, called)

	require.NoError(t, b.Melt())
	require.NoError(t, b.Melt(), "idempotent")
	assert.True(t, b.Mutable())
	require.NoError(t, b.Scramble())
	assert.NotEqual(t, make([]byte, 32), read(t, b))
	require.NoError(t, b.Wipe())
	assert.Equal(t, make([]byte, 32), read(t, b))
}

func TestDestroyedBuffer(t *testing.T) {
	b, err := NewBufferFromBytes([]byte("secret"))
	require.NoError(t, err)
	require.NoError(t, b.Destroy())
	require.NoError(t, b.Destroy(), "idempotent")

	var nilBuf *Buffer
	for _, buf := range []*Buffer{b, nilBuf} {
		called := false
		mark := func([]byte) error { called = true; return nil }
		assert.ErrorIs(t, buf.WithData(mark), ErrDestroyed)
		assert.ErrorIs(t, buf.WithDataMut(mark), ErrDestroyed)
		assert.False(t, called)
		assert.ErrorIs(t, buf.Freeze(), ErrDestroyed)
		assert.ErrorIs(t, buf.Melt(), ErrDestroyed)
		assert.ErrorIs(t, buf.Scramble(), ErrDestroyed)
		assert.ErrorIs(t, buf.Wipe(), ErrDestroyed)
		assert.ErrorIs(t, buf.Verify(), ErrDestroyed)
		ok, err := buf.EqualTo([]byte("secret"))
		assert.ErrorIs(t, err, ErrDestroyed)
		assert.False(t, ok)
		assert.False(t, buf.Alive())
		assert.False(t, buf.Mutable())
		assert.Zero(t, buf.Size())
		assert.NoError(t, buf.Destroy())
		assert.Equal(t, "memguard.Buffer(destroyed)", buf.String())
	}
}

func TestEqualTo(t *testing.T) {
	b, err := NewBufferFromBytes([]byte("correct horse"))
	require.NoError(t, err)
	defer b.Destroy()
	for _, tc := range []struct {
		other string
		want  bool
	}{
		{"correct horse", true},
		{"correct horsE", false},
		{"Correct horse", false},
		{"correct hors", false},
		{"correct horse!", false},
		{"", false},
	} {
		got, err := b.EqualTo([]byte(tc.other))
		assert.NoError(t, err)
		assert.Equal(t, tc.want, got, "%q", tc.other)
	}
}

func TestStringNeverShowsContents(t *testing.T) {
	b, err := NewBufferFromBytes([]byte("hunter2hunter2"))
	require.NoError(t, err)
	defer b.Destroy()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out := fmt.Sprintf(verb, b)
		assert.NotContains(t, out, "hunter2", verb)
		assert.NotContains(t, out, "68756e74657232", verb)
		assert.Equal(t, "memguard.Buffer(14 bytes, frozen)", out, verb)
	}
	require.NoError(t, b.Melt())
	assert.Equal(t, "memguard.Buffer(14 bytes, mutable)", b.String())
}

// corruptions break a Buffer's canary the way an overflow or underflow
// would, from inside the process.
var corruptions = map[string]func(r *region){
	"lead canary": func(r *region) { r.leadCanary()[canaryLen-1] ^= 1 },
	"tail canary": func(r *region) { r.tailCanary()[0] ^= 1 },
	"tail canary end": func(r *region) {
		tail := r.tailCanary()
		tail[len(tail)-1] ^= 1
	},
}

func TestCanaryCorruption(t *testing.T) {
	for name, corrupt := range corruptions {
		t.Run(name, func(t *testing.T) {
			b, err := NewBuffer(20) // 12 tail canary bytes
			require.NoError(t, err)
			before := Stats()
			corrupt(b.region)

			called := false
			mark := func([]byte) error { called = true; return nil }
			assert.ErrorIs(t, b.WithData(mark), ErrCanaryCorrupt)
			assert.ErrorIs(t, b.WithDataMut(mark), ErrCanaryCorrupt)
			assert.False(t, called)
			_, err = b.EqualTo(nil)
			assert.ErrorIs(t, err, ErrCanaryCorrupt)
			assert.ErrorIs(t, b.Verify(), ErrCanaryCorrupt)
			assert.ErrorIs(t, b.Destroy(), ErrCanaryCorrupt, "reported by Destroy")
			assert.False(t, b.Alive())
			assert.NoError(t, b.Destroy(), "reported once")

			after := Stats()
			assert.Equal(t, before.CanaryFailures+1, after.CanaryFailures, "counted once per buffer")
			assert.Equal(t, before.LiveBuffers-1, after.LiveBuffers, "freed anyway")
		})
	}
}

func TestVerifyCatchesPaddingUnderflow(t *testing.T) {
	b, err := NewBuffer(32)
	require.NoError(t, err)
	// Jump the leading canary: the padding before it must stay zero.
	*(*byte)(unsafePointerAdd(b.region.leadCanary(), -1)) = 0x41
	assert.NoError(t, b.WithData(func([]byte) error { return nil }), "the fast check only samples the canaries")
	assert.ErrorIs(t, b.Verify(), ErrCanaryCorrupt)
	assert.ErrorIs(t, b.Destroy(), ErrCanaryCorrupt)
}

func TestCorruptionLeavesOthersIntact(t *testing.T) {
	var good []*Buffer
	for i := 0; i < 8; i++ {
		b, err := NewBufferFromBytes(pattern(40 + i))
		require.NoError(t, err)
		good = append(good, b)
	}
	bad, err := NewBuffer(40)
	require.NoError(t, err)
	corruptions["tail canary"](bad.region)
	assert.ErrorIs(t, bad.Destroy(), ErrCanaryCorrupt)
	for i, b := range good {
		assert.Equal(t, pattern(40+i), read(t, b))
		assert.NoError(t, b.Destroy())
	}
}

func TestStatsTrackBuffers(t *testing.T) {
	drainCache()
	before := Stats()
	var bufs []*Buffer
	for i := 0; i < 10; i++ {
		b, err := NewBuffer(32)
		require.NoError(t, err)
		bufs = append(bufs, b)
	}
	mid := Stats()
	assert.Equal(t, before.LiveBuffers+10, mid.LiveBuffers)
	assert.Equal(t, before.LockedBytes+10*regionPagesFor(32), mid.LockedBytes)
	assert.NotZero(t, mid.MemlockLimit)
	for _, b := range bufs {
		require.NoError(t, b.Destroy())
	}
	after := Stats()
	assert.Equal(t, before.LiveBuffers, after.LiveBuffers)
	assert.Equal(t, before.CachedRegions+10, after.CachedRegions, "kept for reuse")
	assert.Equal(t, mid.LockedBytes, after.LockedBytes, "cached regions stay locked")
	drainCache()
	assert.Equal(t, before.LockedBytes, Stats().LockedBytes)
	assert.Zero(t, Stats().CachedRegions)
}

func TestLockPolicyDisabled(t *testing.T) {
	defer SetLockPolicy(LockRequired)
	drainCache()
	SetLockPolicy(LockDisabled)
	before := Stats()
	b, err := NewBuffer(32)
	require.NoError(t, err)
	mid := Stats()
	assert.Equal(t, before.UnlockedBuffers+1, mid.UnlockedBuffers)
	assert.Equal(t, before.LockedBytes, mid.LockedBytes)
	require.NoError(t, b.Destroy())
	assert.Equal(t, before.UnlockedBuffers, Stats().UnlockedBuffers)
	assert.Equal(t, before.LockedBytes, Stats().LockedBytes)

	SetLockPolicy(LockPolicy(42)) // unknown: the safe default
	assert.Equal(t, LockRequired, LockPolicy(lockPolicy.Load()))
}

func TestRegistryRemovesFromMiddle(t *testing.T) {
	var bufs []*Buffer
	for i := 0; i < 5; i++ {
		b, err := NewBuffer(8)
		require.NoError(t, err)
		bufs = append(bufs, b)
	}
	require.NoError(t, bufs[1].Destroy())
	require.NoError(t, bufs[3].Destroy())
	live := buffers.snapshot()
	for i, b := range bufs {
		assert.Equal(t, i != 1 && i != 3, contains(live, b.bufferState), "buffer %d", i)
	}
	for _, b := range live {
		assert.Same(t, b, buffers.entry(b), "slot index is consistent")
	}
	for _, b := range bufs {
		require.NoError(t, b.Destroy())
	}
}

func contains(list []*bufferState, b *bufferState) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

func TestWithDataFastPath(t *testing.T) {
	// NumCgoCall counts the whole process: stop every coffer's background
	// re-keying (the enclave key's included) so that only WithData counts.
	Purge()
	b, err := NewBufferRandom(32)
	require.NoError(t, err)
	defer b.Destroy()
	var sum byte
	read := func(d []byte) error {
		for _, c := range d {
			sum += c
		}
		return nil
	}
	calls := runtime.NumCgoCall()
	allocs := testing.AllocsPerRun(1000, func() { _ = b.WithData(read) })
	assert.Zero(t, allocs, "WithData allocates")
	assert.Equal(t, calls, runtime.NumCgoCall(), "WithData makes cgo calls")
}

func TestWipeAndScrambleBytes(t *testing.T) {
	b := pattern(100)
	WipeBytes(b)
	assert.Equal(t, make([]byte, 100), b)
	WipeBytes(nil)
	require.NoError(t, ScrambleBytes(b))
	assert.NotEqual(t, make([]byte, 100), b)
	assert.NoError(t, ScrambleBytes(nil))
}

func TestErrorMessages(t *testing.T) {
	err := &LockError{Size: 32, Requested: 4096, Limit: 65536, Err: errors.New("cannot allocate memory")}
	assert.ErrorIs(t, err, ErrMemoryLock)
	for _, want := range []string{"4096 bytes", "65536", "ulimit -l", "LimitMEMLOCK", "--ulimit memlock", "CAP_IPC_LOCK", "LockBestEffort"} {
		assert.Contains(t, err.Error(), want)
	}
	err.Limit = MemlockUnlimited
	assert.Contains(t, err.Error(), "unlimited")
	assert.ErrorIs(t, sizeError(-1), ErrInvalidSize)
}

// A panic in fn must not leave the Buffer locked: Destroy would wait
// forever for the reader or writer that never left.
func TestPanicInCallbackReleasesTheBuffer(t *testing.T) {
	for name, with := range map[string]func(*Buffer, func([]byte) error) error{
		"WithData":    (*Buffer).WithData,
		"WithDataMut": (*Buffer).WithDataMut,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := NewBuffer(32)
			require.NoError(t, err)
			assert.PanicsWithValue(t, "boom", func() {
				_ = with(b, func([]byte) error { panic("boom") })
			})
			require.True(t, b.rw.TryLock(), "left locked")
			b.rw.Unlock()
			assert.NoError(t, b.WithData(func([]byte) error { return nil }), "still usable")
			assert.NoError(t, b.Destroy())
			assert.False(t, b.Alive())
		})
	}
}

func TestConcurrentReadersAndDestroy(t *testing.T) {
	for round := 0; round < 20; round++ {
		b, err := NewBufferFromBytes(pattern(64))
		require.NoError(t, err)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for j := 0; j < 50; j++ {
					err := b.WithData(func(d []byte) error {
						if !bytes.Equal(d, pattern(64)) {
							return errors.New("torn read")
						}
						return nil
					})
					if err != nil {
						assert.ErrorIs(t, err, ErrDestroyed)
						return
					}
				}
			}()
		}
		close(start)
		assert.NoError(t, b.Destroy())
		wg.Wait()
		assert.False(t, b.Alive())
	}
}
