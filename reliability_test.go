package memguard

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// untilTrue spins (yielding) until cond holds, failing the test at the
// deadline: a wait on a state change, never a sleep standing in for one.
func untilTrue(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached within %v", d)
		}
		runtime.Gosched()
	}
}

// insideWithKeyWhileDestroying runs inside(c) from a WithKey callback while
// another goroutine's Destroy of c waits for that callback. It returns a
// channel closed when Destroy returns, and WithKey's error.
func insideWithKeyWhileDestroying(t *testing.T, inside func(c *Coffer)) (chan struct{}, error) {
	c, err := NewCoffer()
	require.NoError(t, err)
	destroyed := make(chan struct{})
	var keyErr error
	withinDeadline(t, 10*time.Second, func() {
		keyErr = c.WithKey(func([]byte) error {
			go func() {
				c.Destroy()
				close(destroyed)
			}()
			// Destroy marks the coffer before it waits for this callback.
			untilTrue(t, 5*time.Second, c.Destroyed)
			inside(c)
			return nil
		})
	})
	return destroyed, keyErr
}

func TestPurgeInsideWithKeyWhileDestroyPending(t *testing.T) {
	destroyed, err := insideWithKeyWhileDestroying(t, func(*Coffer) { Purge() })
	assert.ErrorIs(t, err, ErrCofferDestroyed)
	withinDeadline(t, 10*time.Second, func() { <-destroyed })
}

func TestSafePanicInsideWithKeyWhileDestroyPending(t *testing.T) {
	var recovered any
	destroyed, err := insideWithKeyWhileDestroying(t, func(*Coffer) {
		defer func() { recovered = recover() }()
		SafePanic("stop")
	})
	assert.Equal(t, "stop", recovered)
	assert.ErrorIs(t, err, ErrCofferDestroyed)
	withinDeadline(t, 10*time.Second, func() { <-destroyed })
}

func TestPurgeFromAnotherGoroutineWhileDestroyPending(t *testing.T) {
	destroyed, err := insideWithKeyWhileDestroying(t, func(c *Coffer) {
		purged := make(chan struct{})
		go func() { Purge(); close(purged) }()
		// The callback is still running: Purge must not wait for it.
		withinDeadline(t, 5*time.Second, func() { <-purged })
	})
	assert.ErrorIs(t, err, ErrCofferDestroyed)
	withinDeadline(t, 10*time.Second, func() { <-destroyed })
}

// Purge interleaved with every call that takes a Buffer's or a Coffer's
// locks, from many goroutines: every Purge returns, and so does everything
// else.
func TestPurgeNeverWaitsOnAnyCall(t *testing.T) {
	withinDeadline(t, time.Minute, func() {
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					c, err := NewCoffer(WithRekeyInterval(time.Microsecond))
					if err == nil {
						c.WithKey(func([]byte) error { return nil })
						c.Rekey()
						c.Destroy()
					}
					b, err := NewBufferFromBytes(pattern(32))
					if err == nil {
						b.Melt()
						b.Freeze()
						if e, err := b.Seal(); err == nil {
							if o, err := e.Open(); err == nil {
								o.Destroy()
							}
						}
						b.Destroy()
					}
				}
			}()
		}
		for i := 0; i < 500; i++ {
			Purge()
		}
		wg.Wait()
	})
}

// hammer runs call n times in each of 4 goroutines while another purges
// in a loop.
func hammer(t *testing.T, n int, call func()) {
	t.Helper()
	withinDeadline(t, 2*time.Minute, func() {
		stop := make(chan struct{})
		purger := make(chan struct{})
		go func() {
			defer close(purger)
			for {
				select {
				case <-stop:
					return
				default:
					Purge()
					runtime.Gosched()
				}
			}
		}()
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n; i++ {
					call()
				}
			}()
		}
		wg.Wait()
		close(stop)
		<-purger
	})
}

func TestWithKeyNeverSeesAZeroKeyWithoutError(t *testing.T) {
	var zero [keySize]byte
	var successes atomic.Int64
	hammer(t, 300, func() {
		c, err := NewCoffer(WithRekeyInterval(0))
		if err != nil {
			return
		}
		defer c.Destroy()
		for i := 0; i < 20; i++ {
			var sawZero bool
			err := c.WithKey(func(k []byte) error {
				runtime.Gosched() // a window for the purger
				sawZero = bytes.Equal(k, zero[:])
				return nil
			})
			if err == nil {
				successes.Add(1)
				assert.False(t, sawZero, "an all-zero key with a nil error")
			} else {
				assert.ErrorIs(t, err, ErrCofferDestroyed)
			}
		}
	})
	t.Logf("%d successful WithKey calls", successes.Load())
}

// Large secrets: decrypting one takes long enough for the purger to land
// inside most of the time.
const hammerSecret = 256 << 10

func TestStreamNeverReadsZerosWithoutError(t *testing.T) {
	secret := pattern(hammerSecret)
	hammer(t, 40, func() {
		s := NewStream(WithChunkSize(hammerSecret / 2))
		if _, err := s.Write(bytes.Clone(secret)); err != nil {
			return
		}
		// Read in odd pieces, so that remainders are sealed again.
		var got []byte
		p := make([]byte, hammerSecret/3)
		for {
			clear(p)
			n, err := s.Read(p)
			if n > 0 {
				assert.Equal(t, secret[len(got):len(got)+n], p[:n], "bytes returned as read are the secret's")
				got = append(got, p[:n]...)
			}
			if err == io.EOF {
				assert.Equal(t, secret, got)
				return
			}
			if err != nil {
				assert.ErrorIs(t, err, ErrDecryption)
				assert.Equal(t, make([]byte, len(p)-n), p[n:], "nothing of a failed chunk left in p")
				assert.Equal(t, len(secret)-len(got), s.Size(), "the failed chunk stays in the stream")
				return
			}
		}
	})
}

// Open, and a Stream's Flush and Next, racing Purge: each returns
// ErrDecryption or a Buffer holding the secret, never one of zeros.
func TestConstructorsNeverReturnAPurgedBuffer(t *testing.T) {
	secret := pattern(hammerSecret)
	stream := func(take func(*Stream) (*Buffer, error)) func() (*Buffer, error) {
		return func() (*Buffer, error) {
			s := NewStream(WithChunkSize(hammerSecret))
			if _, err := s.Write(bytes.Clone(secret)); err != nil {
				return nil, nil // purged before the call under test
			}
			return take(s)
		}
	}
	for name, produce := range map[string]func() (*Buffer, error){
		"Open": func() (*Buffer, error) {
			e, err := NewEnclave(bytes.Clone(secret))
			if err != nil {
				return nil, nil // purged before the call under test
			}
			return e.Open()
		},
		"Flush": stream((*Stream).Flush),
		"Next":  stream((*Stream).Next),
	} {
		t.Run(name, func(t *testing.T) {
			hammer(t, 40, func() {
				b, err := produce()
				if err != nil {
					assert.ErrorIs(t, err, ErrDecryption)
					return
				}
				if b == nil {
					return
				}
				defer b.Destroy()
				// Purge may take it now; but not before it was returned.
				ok, err := b.EqualTo(secret)
				if err == nil {
					assert.True(t, ok, "%s returned a Buffer without the secret", name)
				}
			})
		})
	}
}

// Every exported method on a zero value: no panic, no crash, the documented
// result.
func TestZeroValues(t *testing.T) {
	nop := func([]byte) error { return nil }
	for _, b := range []*Buffer{new(Buffer), nil} {
		assert.ErrorIs(t, b.WithData(nop), ErrDestroyed)
		assert.ErrorIs(t, b.WithDataMut(nop), ErrDestroyed)
		assert.ErrorIs(t, b.Freeze(), ErrDestroyed)
		assert.ErrorIs(t, b.Melt(), ErrDestroyed)
		assert.ErrorIs(t, b.Scramble(), ErrDestroyed)
		assert.ErrorIs(t, b.Wipe(), ErrDestroyed)
		ok, err := b.EqualTo([]byte("x"))
		assert.False(t, ok)
		assert.ErrorIs(t, err, ErrDestroyed)
		assert.ErrorIs(t, b.Verify(), ErrDestroyed)
		e, err := b.Seal()
		assert.Nil(t, e)
		assert.ErrorIs(t, err, ErrDestroyed)
		assert.NoError(t, b.Destroy())
		assert.False(t, b.Alive())
		assert.False(t, b.Mutable())
		assert.False(t, b.Locked())
		assert.Zero(t, b.Size())
		assert.Equal(t, "memguard.Buffer(destroyed)", b.String())
	}

	for _, c := range []*Coffer{new(Coffer), nil} {
		assert.ErrorIs(t, c.WithKey(nop), ErrCofferDestroyed)
		v, err := c.View()
		assert.Nil(t, v)
		assert.ErrorIs(t, err, ErrCofferDestroyed)
		assert.ErrorIs(t, c.Rekey(), ErrCofferDestroyed)
		assert.NoError(t, c.Destroy())
		assert.True(t, c.Destroyed())
	}

	for _, e := range []*Enclave{new(Enclave), nil} {
		b, err := e.Open()
		assert.Nil(t, b)
		assert.ErrorIs(t, err, ErrDecryption)
		assert.ErrorIs(t, err, ErrInvalidArgument)
		assert.Zero(t, e.Size())
		assert.Equal(t, "memguard.Enclave(0 bytes)", e.String())
	}

	var s Stream // empty and usable
	assert.Zero(t, s.Size())
	n, err := s.Read(make([]byte, 4))
	assert.Zero(t, n)
	assert.Equal(t, io.EOF, err)
	b, err := s.Next()
	assert.Nil(t, b)
	assert.Equal(t, io.EOF, err)
	b, err = s.Flush()
	assert.Nil(t, b)
	assert.Equal(t, io.EOF, err)
	n, err = s.Write([]byte("zero stream"))
	require.NoError(t, err)
	assert.Equal(t, 11, n)
	b, err = s.Flush()
	require.NoError(t, err)
	ok, err := b.EqualTo([]byte("zero stream"))
	assert.True(t, ok)
	assert.NoError(t, err)
	b.Destroy()

	var nilStream *Stream
	_, err = nilStream.Write([]byte("x"))
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = nilStream.Read(make([]byte, 1))
	assert.Equal(t, io.EOF, err)
	assert.Zero(t, nilStream.Size())
}

// uncomparableSignal is an os.Signal whose dynamic type cannot be a map key.
type uncomparableSignal []string

func (uncomparableSignal) Signal()          {}
func (s uncomparableSignal) String() string { return "odd" }

func TestCatchSignalIgnoresOtherSignalTypes(t *testing.T) {
	assert.NotPanics(t, func() { CatchSignal(nil, uncomparableSignal(nil)) })
	CatchSignal(nil, uncomparableSignal(nil), syscall.SIGUSR2)
	catcher.mu.Lock()
	active := catcher.ch != nil
	catcher.mu.Unlock()
	assert.True(t, active, "the syscall.Signal among them is caught")
	CatchSignal(nil, uncomparableSignal(nil)) // nothing left to catch: stops
	catcher.mu.Lock()
	assert.Nil(t, catcher.ch)
	catcher.mu.Unlock()
}

// Trimming a secret inside its own callback: the frozen source is copied
// and left to its owner, never wiped (which would fault).
func TestConstructorsFromTheLibrarysOwnMemory(t *testing.T) {
	b, err := NewBufferFromBytes(pattern(64))
	require.NoError(t, err)
	defer b.Destroy()
	var trimmed *Buffer
	var sealed *Enclave
	require.NoError(t, b.WithData(func(d []byte) error {
		var err error
		if trimmed, err = NewBufferFromBytes(d[8:40]); err != nil {
			return err
		}
		sealed, err = NewEnclave(d[:16])
		return err
	}))
	defer trimmed.Destroy()
	ok, err := trimmed.EqualTo(pattern(64)[8:40])
	assert.True(t, ok)
	assert.NoError(t, err)
	ok, err = b.EqualTo(pattern(64))
	assert.True(t, ok, "the source Buffer is left as it was")
	assert.NoError(t, err)
	opened, err := sealed.Open()
	require.NoError(t, err)
	ok, _ = opened.EqualTo(pattern(64)[:16])
	assert.True(t, ok)
	opened.Destroy()

	// A secluded Buffer's data, readable only inside the callback.
	hidden, err := NewBufferFromBytes(pattern(64), NoAccessWhenIdle())
	require.NoError(t, err)
	defer hidden.Destroy()
	require.NoError(t, hidden.WithData(func(d []byte) error {
		c, err := NewBufferFromBytes(d)
		if err == nil {
			c.Destroy()
		}
		return err
	}))
}

func TestConstructorsRefuseOtherReadOnlyMemory(t *testing.T) {
	page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	require.NoError(t, err)
	defer unix.Munmap(page)
	copy(page, "read-only secret")
	require.NoError(t, unix.Mprotect(page, unix.PROT_READ))
	live := Stats().LiveBuffers
	b, err := NewBufferFromBytes(page[:16])
	assert.Nil(t, b)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	e, err := NewEnclave(page[:16])
	assert.Nil(t, e)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Equal(t, live, Stats().LiveBuffers, "the copy was destroyed")
}

// The check and the reservation against the mapping budget are one step:
// many goroutines racing for the last regions never overshoot it.
func TestMapBudgetHoldsUnderConcurrency(t *testing.T) {
	Purge()
	saved := maxRegions
	defer func() { maxRegions = saved }()
	const limit = 40
	maxRegions = func() int64 { return limit }

	var (
		mu   sync.Mutex
		held []*Buffer
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 10; i++ {
				b, err := NewBuffer(32)
				if err != nil {
					assert.ErrorIs(t, err, ErrOutOfMemory)
					continue
				}
				mu.Lock()
				held = append(held, b)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Len(t, held, limit, "exactly the budget, never more")
	assert.Equal(t, int64(limit), mappedRegions.Load())
	for _, b := range held {
		b.Destroy()
	}
	Purge()
	assert.Zero(t, mappedRegions.Load())
}

// dropBuffers allocates n Buffers and lets go of them without Destroy.
//
//go:noinline
func dropBuffers(t *testing.T, n int) {
	for i := 0; i < n; i++ {
		_, err := NewBufferFromBytes(pattern(32))
		require.NoError(t, err)
	}
}

func TestDroppedBuffersAreReclaimed(t *testing.T) {
	Purge()
	base := Stats()
	dropBuffers(t, 1000) // the collector may start on them at once
	// A cleanup counts the Buffer reclaimed and takes it out of
	// LiveBuffers before it caches or unmaps the region: the locked pages
	// are waited for too, or the last release may still be under way.
	lockedBeyondCache := func() int { return Stats().LockedBytes - int(cache.bytes.Load()) }
	untilTrue(t, time.Minute, func() bool {
		runtime.GC()
		return Stats().LiveBuffers == base.LiveBuffers && Stats().Reclaimed == base.Reclaimed+1000 &&
			lockedBeyondCache() == base.LockedBytes
	})
	assert.Equal(t, base.LockedBytes, lockedBeyondCache(), "locked pages handed back or cached")
}

func TestDroppedCofferIsReclaimed(t *testing.T) {
	base := Stats()
	var state *cofferState // holds the state, not the handle
	func() {
		c, err := NewCoffer(WithRekeyInterval(time.Millisecond))
		require.NoError(t, err)
		require.NoError(t, c.Rekey())
		state = c.cofferState
	}()
	untilTrue(t, time.Minute, func() bool {
		runtime.GC()
		return Stats().Reclaimed == base.Reclaimed+1
	})
	assert.True(t, state.isDestroyed())
	assert.False(t, state.store.Alive(), "key wiped and freed")
	withinDeadline(t, 10*time.Second, func() { <-state.done })
}

func TestDestroyedBufferIsNotCountedAsReclaimed(t *testing.T) {
	base := Stats().Reclaimed
	func() {
		for i := 0; i < 100; i++ {
			b, err := NewBuffer(16)
			require.NoError(t, err)
			require.NoError(t, b.Destroy())
		}
	}()
	runtime.GC()
	runtime.GC()
	assert.Equal(t, base, Stats().Reclaimed)
}

// A copy of a handle (which go vet reports, but a program may still make)
// shares the state: destroying the copy destroys the
// Buffer, and neither the copy nor the original, once dropped, makes the
// finalizer free anything twice or count a reclaim.
func TestCopiedHandleDestroysOnce(t *testing.T) {
	base := Stats()
	func() {
		for _, compact := range []bool{false, true} {
			var opts []Option
			if compact {
				opts = append(opts, Compact())
			}
			b, err := NewBufferFromBytes([]byte("copied handle"), opts...)
			require.NoError(t, err)
			var c Buffer // a copy on the stack, as *b would make
			c.bufferState = b.bufferState
			require.NoError(t, c.Destroy())
			assert.False(t, b.Alive())
			assert.ErrorIs(t, b.WithData(func([]byte) error { return nil }), ErrDestroyed)
			require.NoError(t, b.Destroy())
		}
	}()
	for range 3 {
		runtime.GC()
	}
	after := Stats()
	assert.Equal(t, base.Reclaimed, after.Reclaimed)
	assert.Equal(t, base.LiveBuffers, after.LiveBuffers)
}

// A failed re-key neither ends the background loop nor goes unnoticed.
func TestRekeyLoopSurvivesFailures(t *testing.T) {
	var failing atomic.Int32
	failing.Store(3)
	saved := rekeyRandom
	rekeyRandom = func(b []byte) error {
		if failing.Add(-1) >= 0 {
			return errors.New("injected: random source failed")
		}
		return saved(b)
	}
	defer func() { rekeyRandom = saved }()
	failures := Stats().RekeyFailures

	c, err := NewCoffer(WithRekeyInterval(time.Millisecond))
	require.NoError(t, err)
	defer c.Destroy()
	untilTrue(t, time.Minute, func() bool { return c.rekeys.Load() > 0 })
	assert.GreaterOrEqual(t, Stats().RekeyFailures-failures, 3)
}

// LockBestEffort never hands out an unlocked cached region while locking
// may still succeed.
func TestBestEffortPrefersLockedRegions(t *testing.T) {
	Purge()
	defer SetLockPolicy(LockRequired)
	SetLockPolicy(LockDisabled)
	unlocked, err := NewBuffer(32)
	require.NoError(t, err)
	assert.False(t, unlocked.Locked())
	require.NoError(t, unlocked.Destroy())
	require.Equal(t, 1, Stats().CachedRegions, "kept for LockDisabled, which is in force")

	SetLockPolicy(LockBestEffort)
	b, err := NewBuffer(32)
	require.NoError(t, err)
	assert.True(t, b.Locked(), "a fresh locked region, not the unlocked cached one")
	require.NoError(t, b.Destroy())
	assert.Equal(t, 2, Stats().CachedRegions, "a locked region serves best effort later")
	again, err := NewBuffer(32)
	require.NoError(t, err)
	defer again.Destroy()
	assert.True(t, again.Locked())
	assert.Equal(t, 1, Stats().CachedRegions, "the locked one was reused")
}

// purgingReader returns its data, then purges, as a Purge landing at the
// end of a constructor's fill would.
type purgingReader struct{ data []byte }

func (r *purgingReader) Read(p []byte) (int, error) {
	n := copy(p, r.data)
	r.data = r.data[n:]
	Purge()
	return n, nil
}

func TestFillWipedByPurgeIsAnError(t *testing.T) {
	b, err := NewBufferFromReader(&purgingReader{data: pattern(32)}, 32)
	assert.Nil(t, b)
	assert.ErrorIs(t, err, ErrDestroyed)
}

// A Coffer made while a Purge runs is either alive or marked destroyed, out
// of the live set, with its re-key goroutine ended: never a destroyed key
// in a coffer that still looks alive to Purge and the collector.
func TestNewCofferRacingPurge(t *testing.T) {
	var (
		mu  sync.Mutex
		got []*Coffer
	)
	hammer(t, 200, func() {
		c, err := NewCoffer(WithRekeyInterval(time.Hour))
		if err == nil {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
		}
	})
	var purged []*Coffer
	for _, c := range got {
		if c.Destroyed() { // else made after the last Purge
			purged = append(purged, c)
			require.True(t, c.destroyed.Load(), "marked, not only a dead store")
		}
	}
	t.Logf("%d of %d coffers purged", len(purged), len(got))
	withinDeadline(t, 10*time.Second, func() {
		for _, c := range purged {
			<-c.done
		}
	})
	coffers.mu.Lock()
	for s := range coffers.set {
		assert.False(t, s.isDestroyed(), "a destroyed coffer left in the live set")
	}
	coffers.mu.Unlock() // before Destroy, which takes it
	for _, c := range got {
		c.Destroy()
	}
}

// Two readers inside each of many buffers, all killed (wiped under the
// readers), then all readers released at once: every killed region is
// freed once both readers have left (by the last of them, or by the
// reaper a reader whose TryLock failed started), and by nobody before.
func TestReapIsNeverLost(t *testing.T) {
	reaped := make(chan struct{}, 1024)
	hook := func(point string) {
		if point == "reaped" {
			reaped <- struct{}{}
		}
	}
	testHook.Store(&hook)
	defer testHook.Store(nil)

	pairs, reapers := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; round < 20 && time.Now().Before(deadline); round++ {
		const n = 500
		var inside, wg sync.WaitGroup
		release := make(chan struct{})
		bs := make([]*Buffer, n)
		for k := range bs {
			b, err := NewBuffer(32)
			require.NoError(t, err)
			bs[k] = b
			for r := 0; r < 2; r++ {
				wg.Add(1)
				inside.Add(1)
				go func() {
					defer wg.Done()
					_ = b.WithData(func([]byte) error {
						inside.Done()
						<-release
						return nil
					})
				}()
			}
		}
		inside.Wait()
		for _, b := range bs {
			unmapRegions(b.kill(nil)) // both readers inside: only wipes
		}
		for _, b := range bs {
			b.protMu.Lock()
			require.NotNil(t, b.region, "freed under its readers")
			b.protMu.Unlock()
		}
		close(release)
		wg.Wait()
		started := 0
		for _, b := range bs {
			if b.flag(flagReaping) {
				started++
			}
		}
		withinDeadline(t, 20*time.Second, func() {
			for range started {
				<-reaped
			}
		})
		for _, b := range bs {
			b.protMu.Lock()
			require.Nil(t, b.region, "lost reap")
			b.protMu.Unlock()
			require.NoError(t, b.Destroy())
		}
		pairs += n
		reapers += started
	}
	t.Logf("%d killed buffers, each freed once its readers left; %d by a reaper", pairs, reapers)
}

// The source Buffer was purged (and wiped) inside its own callback: the
// trimming constructors fail with ErrDestroyed instead of copying zeros.
func TestConstructorsFromAPurgedSource(t *testing.T) {
	secret := pattern(32)
	b, err := NewBufferFromBytes(bytes.Clone(secret))
	require.NoError(t, err)
	defer b.Destroy()
	var (
		nb    *Buffer
		nbErr error
		e     *Enclave
		eErr  error
		s     = NewStream()
		sN    int
		sErr  error
	)
	outer := b.WithData(func(d []byte) error {
		Purge() // wipes d under us, as the README promises
		nb, nbErr = NewBufferFromBytes(d)
		e, eErr = NewEnclave(d)
		sN, sErr = s.Write(d)
		return nil
	})
	assert.ErrorIs(t, outer, ErrDestroyed, "the outer WithData reports the purge")
	assert.ErrorIs(t, nbErr, ErrDestroyed)
	assert.ErrorIs(t, eErr, ErrDestroyed)
	assert.ErrorIs(t, sErr, ErrDestroyed)
	assert.Zero(t, sN)
	zeros := make([]byte, 32)
	if nbErr == nil {
		ok, err := nb.EqualTo(zeros)
		t.Logf("NewBufferFromBytes(purged source): err=nil, buffer all zeros=%v (%v)", ok, err)
		assert.False(t, ok, "NewBufferFromBytes returned a Buffer of wiped (zero) data with a nil error")
		nb.Destroy()
	}
	if eErr == nil {
		o, err := e.Open()
		require.NoError(t, err)
		ok, _ := o.EqualTo(zeros)
		t.Logf("NewEnclave(purged source): err=nil, enclave all zeros=%v", ok)
		assert.False(t, ok, "NewEnclave returned an Enclave of wiped (zero) data with a nil error")
		o.Destroy()
	}
	if sErr == nil {
		f, err := s.Flush()
		require.NoError(t, err)
		ok, _ := f.EqualTo(zeros)
		t.Logf("Stream.Write(purged source): n=%d err=nil, stream all zeros=%v", sN, ok)
		assert.False(t, ok, "Stream.Write stored wiped (zero) data with a nil error")
		f.Destroy()
	}
}

// A purger races the trimming constructors: none returns something other
// than the secret with a nil error.
func TestConstructorsRacingPurgeOnTheirSource(t *testing.T) {
	const size = 256 << 10
	secret := pattern(size)
	var bad, badEnclave, good, errs atomic.Int64
	hammer(t, 30, func() {
		b, err := NewBufferFromBytes(bytes.Clone(secret))
		if err != nil {
			return
		}
		defer b.Destroy()
		var nb *Buffer
		var e *Enclave
		var nbErr, eErr error
		_ = b.WithData(func(d []byte) error {
			nb, nbErr = NewBufferFromBytes(d)
			e, eErr = NewEnclave(d)
			return nil
		})
		// tally judges a copy only if the check itself escaped Purge.
		tally := func(b *Buffer, err error, bad *atomic.Int64) {
			if err != nil {
				errs.Add(1)
				return
			}
			defer b.Destroy()
			if ok, err := b.EqualTo(secret); err == nil && ok {
				good.Add(1)
			} else if err == nil {
				bad.Add(1)
			}
		}
		tally(nb, nbErr, &bad)
		if eErr == nil {
			o, err := e.Open()
			if err == nil {
				tally(o, nil, &badEnclave)
			}
		} else {
			errs.Add(1)
		}
	})
	t.Logf("whole copies %d; wiped copies returned with nil error: NewBufferFromBytes %d, NewEnclave %d; errors %d", good.Load(), bad.Load(), badEnclave.Load(), errs.Load())
	assert.Zero(t, bad.Load(), "NewBufferFromBytes returned wiped data with a nil error")
	assert.Zero(t, badEnclave.Load(), "NewEnclave returned wiped data with a nil error")
}

// Trimming copies the part: a frozen source, or one melted and not written
// since (read-only until written), is left as it is; a mutable source with
// writable pages is wiped, as any writable source is.
func TestTrimmingReadOnlyAndWritableSources(t *testing.T) {
	b, err := NewBuffer(32)
	require.NoError(t, err)
	defer b.Destroy()
	require.NoError(t, b.WithDataMut(func(d []byte) error { copy(d, pattern(32)); return nil }))
	require.NoError(t, b.WithData(func(d []byte) error {
		nb, err := NewBufferFromBytes(d[:16])
		if err == nil {
			nb.Destroy()
		}
		return err
	}))
	ok, err := b.EqualTo(append(make([]byte, 16), pattern(32)[16:]...))
	require.NoError(t, err)
	assert.True(t, ok, "a writable source is wiped, the part taken only")

	// Control: melted but never written since (lazy melt keeps it RO): kept.
	c, err := NewBufferFromBytes(pattern(32))
	require.NoError(t, err)
	defer c.Destroy()
	require.NoError(t, c.Melt())
	require.NoError(t, c.WithData(func(d []byte) error {
		nb, err := NewBufferFromBytes(d[:16])
		if err == nil {
			nb.Destroy()
		}
		return err
	}))
	ok, err = c.EqualTo(pattern(32))
	require.NoError(t, err)
	assert.True(t, ok, "melted, not written since: kept")
}

// The same for compact Buffers, whose slots share writable pages.
func TestTrimmingACompactSource(t *testing.T) {
	b, err := NewBufferFromBytes(pattern(32), Compact())
	require.NoError(t, err)
	defer b.Destroy()
	require.NoError(t, b.WithData(func(d []byte) error {
		nb, err := NewBufferFromBytes(d[:16])
		if err == nil {
			nb.Destroy()
		}
		return err
	}))
	ok, err := b.EqualTo(pattern(32))
	require.NoError(t, err)
	assert.True(t, ok, "a compact source is left as it was")

	var nbErr error
	assert.ErrorIs(t, b.WithData(func(d []byte) error {
		Purge()
		_, nbErr = NewBufferFromBytes(d)
		return nil
	}), ErrDestroyed)
	assert.ErrorIs(t, nbErr, ErrDestroyed, "a purged compact source is not copied")
}

// recovered runs f and reports whether it panicked.
func recovered(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// NoAccessWhenIdle: the pages are PROT_NONE whenever no call runs,
// including after a callback panicked.
func TestPanicInWithDataHidesThePages(t *testing.T) {
	b, err := NewBufferRandom(32, NoAccessWhenIdle())
	require.NoError(t, err)
	defer b.Destroy()
	require.Equal(t, protNone, b.region.protection())
	p := recovered(func() {
		b.WithData(func([]byte) error { panic("user bug") })
	})
	require.NotNil(t, p)
	assert.Equal(t, protNone, b.region.protection(), "idle after a panicking WithData callback")
	assert.Zero(t, b.viewers, "viewer count back to zero")
	// And the window never closes again afterwards:
	for i := 0; i < 3; i++ {
		require.NoError(t, b.WithData(func([]byte) error { return nil }))
	}
	assert.Equal(t, protNone, b.region.protection(), "idle after later successful calls")
}

func TestPanicInWithDataMutHidesThePages(t *testing.T) {
	b, err := NewBuffer(32, NoAccessWhenIdle())
	require.NoError(t, err)
	defer b.Destroy()
	p := recovered(func() {
		b.WithDataMut(func([]byte) error { panic("user bug") })
	})
	require.NotNil(t, p)
	assert.Equal(t, protNone, b.region.protection(), "idle after a panicking WithDataMut callback")
}

// Freeze after a hide the kernel refused hides the pages, not leaving them
// writable.
func TestFreezeAfterAFailedHide(t *testing.T) {
	b, err := NewBuffer(32, NoAccessWhenIdle())
	require.NoError(t, err)
	defer b.Destroy()
	saved := protectPages
	protectPages = func(p unsafe.Pointer, n uintptr, prot int) error {
		if prot == protFlags[protNone] {
			return syscall.ENOMEM
		}
		return saved(p, n, prot)
	}
	err = b.WithDataMut(func([]byte) error { return nil })
	protectPages = saved
	assert.ErrorIs(t, err, ErrProtection)
	require.NoError(t, b.Freeze())
	assert.NotEqual(t, protRW, b.region.protection(), "a frozen Buffer is not writable (Freeze: 'a write faults')")
}
