//go:build cgo

package memguard

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Coffer layout inside its one protected region: two shares of the key, a
// scratch mask for re-keying, then slots where concurrent WithKey calls
// assemble the key. All of it fits in one page.
const (
	keySize      = 32
	cofferSlots  = 64 // one bit each in Coffer.slots
	leftOffset   = 0
	rightOffset  = keySize
	maskOffset   = 2 * keySize
	slotsOffset  = 3 * keySize
	cofferSize   = slotsOffset + cofferSlots*keySize
	defaultRekey = 500 * time.Millisecond
)

// The slot bitmap is a uint64: exactly 64 slots.
var _ [cofferSlots - 64]struct{}
var _ [64 - cofferSlots]struct{}

// Coffer holds a 32-byte random key as two random shares whose XOR is the
// key, in protected memory. Re-keying XORs both shares with fresh random
// bytes: the stored representation changes, the key does not. By default a
// goroutine re-keys every 500ms; it never holds a lock while it waits, and
// after a failed re-key it retries with a growing delay (counted in
// Stats().RekeyFailures).
//
// The key is assembled only inside WithKey, in a slot of the same protected
// region, and wiped as soon as the callback returns: no byte of the key or
// of its shares passes through Go memory.
//
// A Coffer is safe for concurrent use. A zero Coffer behaves as destroyed.
// A Coffer that becomes unreachable without Destroy is destroyed by the
// garbage collector and counted in Stats().Reclaimed.
type Coffer struct {
	_            [0]sync.Mutex // go vet reports copies, as for Buffer
	*cofferState               // nil in a zero Coffer
	cleanup      runtime.Cleanup
}

// cofferState is a Coffer apart from its handle. The set of live coffers,
// which Purge walks, and the re-key goroutine hold the state, never the
// handle, so that an unreachable handle can be reclaimed.
type cofferState struct {
	store     *Buffer
	shares    sync.RWMutex  // WithKey reads the shares (read), Rekey changes them (write)
	slots     atomic.Uint64 // bit i set: key slot i is in use
	stop      chan struct{} // closed once the Coffer is destroyed
	done      chan struct{} // closed when the re-key goroutine has exited
	destroyed atomic.Bool
	rekeys    atomic.Int64 // completed re-keys, for tests
}

// CofferOption configures NewCoffer. CofferOptions are built only by the
// functions of this package (WithRekeyInterval). A nil CofferOption is
// ignored; a value of another type (a caller's type that embeds a
// CofferOption) makes NewCoffer fail with ErrInvalidArgument.
type CofferOption interface {
	apply(*cofferConfig)
}

type cofferConfig struct {
	rekeyInterval time.Duration
}

// rekeyInterval is the CofferOption WithRekeyInterval returns.
type rekeyInterval time.Duration

func (d rekeyInterval) apply(c *cofferConfig) { c.rekeyInterval = time.Duration(d) }

// WithRekeyInterval sets how often the background goroutine re-keys the
// Coffer. Zero turns background re-keying off; Rekey still works. A
// negative interval makes NewCoffer fail with ErrInvalidArgument.
func WithRekeyInterval(d time.Duration) CofferOption { return rekeyInterval(d) }

var coffers struct {
	mu  sync.Mutex
	set map[*cofferState]struct{}
}

// NewCoffer returns a Coffer holding a fresh random key.
func NewCoffer(opts ...CofferOption) (*Coffer, error) {
	cfg := cofferConfig{rekeyInterval: defaultRekey}
	for _, opt := range opts {
		switch opt := opt.(type) {
		case nil:
		case rekeyInterval:
			opt.apply(&cfg)
		default:
			return nil, fmt.Errorf("%w: %T is not a CofferOption of this package", ErrInvalidArgument, opt)
		}
	}
	if cfg.rekeyInterval < 0 {
		return nil, fmt.Errorf("%w: negative re-key interval %v", ErrInvalidArgument, cfg.rekeyInterval)
	}
	store, err := newBuffer(cofferSize, keyStorage())
	if err != nil {
		return nil, err
	}
	// Two independent random shares: their XOR is a uniformly random key.
	err = store.WithDataMut(func(mem []byte) error {
		return randomBytes(mem[leftOffset:maskOffset])
	})
	if err != nil {
		store.Destroy()
		return nil, err
	}
	s := &cofferState{
		store: store,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	coffers.mu.Lock()
	if coffers.set == nil {
		coffers.set = make(map[*cofferState]struct{})
	}
	coffers.set[s] = struct{}{}
	coffers.mu.Unlock()
	// A Purge that took its snapshot of coffers before the insert above
	// killed the store all the same; such a coffer is born destroyed.
	if !store.Alive() {
		s.markDestroyed()
	}
	if cfg.rekeyInterval > 0 {
		go s.rekeyLoop(cfg.rekeyInterval)
	} else {
		close(s.done)
	}
	c := &Coffer{cofferState: s}
	c.cleanup = runtime.AddCleanup(c, reclaimCoffer, s)
	return c, nil
}

// reclaimCoffer destroys a Coffer dropped without Destroy. It runs on the
// runtime's cleanup goroutine, so it must not wait: it takes Purge's path.
func reclaimCoffer(s *cofferState) {
	if !s.destroyed.Load() && s.store.Alive() {
		reclaimed.Add(1)
	}
	s.kill()
}

// state is the Coffer's state, or nil for a nil or zero Coffer.
func (c *Coffer) state() *cofferState {
	if c == nil {
		return nil
	}
	return c.cofferState
}

// rekeyBackoffMax bounds the delay between attempts after failed re-keys.
const rekeyBackoffMax = time.Minute

// rekeyLoop re-keys every interval until the Coffer is destroyed. A failed
// re-key is counted and retried after twice the previous delay, up to
// rekeyBackoffMax; a success returns to the interval.
func (s *cofferState) rekeyLoop(interval time.Duration) {
	defer close(s.done)
	delay := interval
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-timer.C:
		}
		switch err := s.rekey(); {
		case err == nil:
			delay = interval
		case errors.Is(err, ErrCofferDestroyed):
			return
		default:
			rekeyFailures.Add(1)
			delay = min(2*delay, max(interval, rekeyBackoffMax))
		}
		timer.Reset(delay)
	}
}

// WithKey calls fn with the key and returns fn's error. The slice is in
// protected memory, private to this call and wiped when fn returns: fn may
// overwrite it, as the enclave cipher does with a derived key, but must not
// keep it. Many WithKey calls may run at once.
//
// If the Coffer is destroyed, or is destroyed or purged while fn runs,
// WithKey returns ErrCofferDestroyed, wrapping fn's error if fn returned
// one: Purge does not wait for fn, so the key fn saw may have been wiped,
// and whatever fn computed must be discarded.
// fn must not call WithKey on the same Coffer: the inner call deadlocks if
// a Destroy is queued between the two, as WithData's does.
func (c *Coffer) WithKey(fn func(key []byte) error) error {
	if fn == nil {
		return ErrInvalidArgument
	}
	s := c.state()
	if s == nil {
		return ErrCofferDestroyed
	}
	err := s.withKey(fn)
	runtime.KeepAlive(c)
	return err
}

func (s *cofferState) withKey(fn func(key []byte) error) error {
	slot, ok := s.takeSlot() // fails at once on a destroyed Coffer
	if !ok {
		return ErrCofferDestroyed
	}
	defer s.slots.And(^(uint64(1) << slot))
	var fnErr error // fn's own, kept when the Coffer dies under it
	err := s.store.WithData(func(mem []byte) error {
		key := mem[slotsOffset+slot*keySize:][:keySize]
		s.shares.RLock()
		// The key passes through vector registers, which only
		// eraseTemporaries can clear.
		eraseTemporaries(func() { subtle.XORBytes(key, mem[leftOffset:rightOffset], mem[rightOffset:maskOffset]) })
		s.shares.RUnlock()
		defer wipeBytes(key)
		// Destroy and Purge mark the Coffer before they wipe the
		// shares: unmarked now, the key was assembled from whole ones.
		if s.isDestroyed() {
			return ErrCofferDestroyed
		}
		fnErr = fn(key)
		return fnErr
	})
	if !s.isDestroyed() {
		return err
	}
	// Destroyed meanwhile: the key fn saw may have been wiped.
	switch {
	case fnErr != nil && !errors.Is(fnErr, ErrCofferDestroyed):
		return fmt.Errorf("%w: destroyed while in use: %w", ErrCofferDestroyed, fnErr)
	case fnErr != nil:
		return fnErr
	case err == nil || errors.Is(err, ErrDestroyed) || errors.Is(err, ErrCofferDestroyed):
		return ErrCofferDestroyed
	}
	return err // what kept fn from running: a broken canary
}

// takeSlot claims a free key slot. With all of them in use (more than
// cofferSlots concurrent WithKey calls) it yields until one is freed; it
// fails only if the Coffer is destroyed meanwhile.
func (s *cofferState) takeSlot() (int, bool) {
	for !s.isDestroyed() {
		used := s.slots.Load()
		if used == ^uint64(0) {
			runtime.Gosched()
			continue
		}
		slot := bits.TrailingZeros64(^used)
		if s.slots.CompareAndSwap(used, used|uint64(1)<<slot) {
			return slot, true
		}
	}
	return 0, false
}

// View returns a frozen Buffer holding a copy of the key. The caller
// destroys it.
func (c *Coffer) View() (*Buffer, error) {
	st, err := storageFor(nil)
	if err != nil {
		return nil, err
	}
	return newFrozenBuffer(keySize, st, func(view []byte) error {
		return c.WithKey(func(key []byte) error {
			copy(view, key)
			return nil
		})
	})
}

// Rekey replaces both shares with new random ones of the same XOR.
func (c *Coffer) Rekey() error {
	s := c.state()
	if s == nil {
		return ErrCofferDestroyed
	}
	err := s.rekey()
	runtime.KeepAlive(c)
	return err
}

// rekeyRandom fills the re-key mask; a variable so that tests can make it
// fail.
var rekeyRandom = randomBytes

func (s *cofferState) rekey() error {
	if s.isDestroyed() {
		return ErrCofferDestroyed
	}
	// Same order as WithKey, store first, then shares: a Destroy waiting
	// on the store cannot then wedge the two against each other.
	err := s.store.WithData(func(mem []byte) error {
		s.shares.Lock()
		defer s.shares.Unlock()
		mask := mem[maskOffset:slotsOffset]
		defer wipeBytes(mask)
		if err := rekeyRandom(mask); err != nil {
			return err
		}
		subtle.XORBytes(mem[leftOffset:rightOffset], mem[leftOffset:rightOffset], mask)
		subtle.XORBytes(mem[rightOffset:maskOffset], mem[rightOffset:maskOffset], mask)
		s.rekeys.Add(1)
		return nil
	})
	if errors.Is(err, ErrDestroyed) {
		return ErrCofferDestroyed
	}
	return err
}

// Destroy stops the re-key goroutine, waits for it and for WithKey calls
// in progress, and wipes and frees the key. Destroying again does nothing;
// a zero Coffer has nothing to destroy. It must not be called from inside
// this Coffer's WithKey callback. A Purge meanwhile does not wait for it.
func (c *Coffer) Destroy() error {
	s := c.state()
	if s == nil {
		return nil
	}
	c.cleanup.Stop()
	s.markDestroyed()
	<-s.done
	return s.store.Destroy()
}

// Destroyed reports whether the Coffer has been destroyed. A Coffer whose
// store a Purge took (even one that raced with NewCoffer) is destroyed.
func (c *Coffer) Destroyed() bool { return c.state().isDestroyed() }

func (s *cofferState) isDestroyed() bool {
	return s == nil || s.destroyed.Load() || !s.store.Alive()
}

// markDestroyed marks the Coffer destroyed, stops its goroutine (without
// waiting for it) and drops it from the live set. Only the first call does
// anything.
func (s *cofferState) markDestroyed() {
	if !s.destroyed.CompareAndSwap(false, true) {
		return
	}
	close(s.stop)
	coffers.mu.Lock()
	delete(coffers.set, s)
	coffers.mu.Unlock()
}

// kill is Purge's Destroy: it marks the Coffer and wipes its key now,
// waiting for no callback, re-key or Destroy in progress.
func (s *cofferState) kill() {
	s.markDestroyed()
	unmapRegions(s.store.kill(nil))
}

// purgeCoffers kills every live Coffer.
func purgeCoffers() {
	coffers.mu.Lock()
	live := make([]*cofferState, 0, len(coffers.set))
	for s := range coffers.set {
		live = append(live, s)
	}
	coffers.mu.Unlock()
	for _, s := range live {
		s.kill()
	}
}
