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
// goroutine re-keys every 500ms; it never holds a lock while it waits.
//
// The key is assembled only inside WithKey, in a slot of the same protected
// region, and wiped as soon as the callback returns: no byte of the key or
// of its shares passes through Go memory.
//
// A Coffer is safe for concurrent use.
type Coffer struct {
	store     *Buffer
	shares    sync.RWMutex  // WithKey reads the shares (read), Rekey changes them (write)
	slots     atomic.Uint64 // bit i set: key slot i is in use
	stop      chan struct{} // closed by Destroy
	done      chan struct{} // closed when the re-key goroutine has exited
	destroyed atomic.Bool
	once      sync.Once
	rekeys    atomic.Int64 // completed re-keys, for tests
}

// CofferOption configures NewCoffer.
type CofferOption func(*cofferConfig)

type cofferConfig struct {
	rekeyInterval time.Duration
}

// WithRekeyInterval sets how often the background goroutine re-keys the
// Coffer. Zero turns background re-keying off; Rekey still works. A
// negative interval makes NewCoffer fail with ErrInvalidArgument.
func WithRekeyInterval(d time.Duration) CofferOption {
	return func(c *cofferConfig) { c.rekeyInterval = d }
}

var coffers struct {
	mu  sync.Mutex
	set map[*Coffer]struct{}
}

// NewCoffer returns a Coffer holding a fresh random key.
func NewCoffer(opts ...CofferOption) (*Coffer, error) {
	cfg := cofferConfig{rekeyInterval: defaultRekey}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	if cfg.rekeyInterval < 0 {
		return nil, fmt.Errorf("%w: negative re-key interval %v", ErrInvalidArgument, cfg.rekeyInterval)
	}
	store, err := NewBuffer(cofferSize)
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
	c := &Coffer{
		store: store,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	coffers.mu.Lock()
	if coffers.set == nil {
		coffers.set = make(map[*Coffer]struct{})
	}
	coffers.set[c] = struct{}{}
	coffers.mu.Unlock()
	if cfg.rekeyInterval > 0 {
		go c.rekeyLoop(cfg.rekeyInterval)
	} else {
		close(c.done)
	}
	return c, nil
}

func (c *Coffer) rekeyLoop(interval time.Duration) {
	defer close(c.done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
			if c.Rekey() != nil {
				return
			}
		}
	}
}

// WithKey calls fn with the key and returns fn's error. The slice is in
// protected memory, private to this call and wiped when fn returns: fn may
// overwrite it, as the enclave cipher does with a derived key, but must not
// keep it. Many WithKey calls may run at once.
func (c *Coffer) WithKey(fn func(key []byte) error) error {
	if fn == nil {
		return ErrInvalidArgument
	}
	if c.Destroyed() {
		return ErrCofferDestroyed
	}
	slot, ok := c.takeSlot()
	if !ok {
		return ErrCofferDestroyed
	}
	defer c.slots.And(^(uint64(1) << slot))
	err := c.store.WithData(func(mem []byte) error {
		key := mem[slotsOffset+slot*keySize:][:keySize]
		c.shares.RLock()
		// The key passes through vector registers, which only
		// eraseTemporaries can clear.
		eraseTemporaries(func() { subtle.XORBytes(key, mem[leftOffset:rightOffset], mem[rightOffset:maskOffset]) })
		c.shares.RUnlock()
		defer wipeBytes(key)
		return fn(key)
	})
	if errors.Is(err, ErrDestroyed) && c.Destroyed() {
		return ErrCofferDestroyed
	}
	return err
}

// takeSlot claims a free key slot. With all of them in use (more than
// cofferSlots concurrent WithKey calls) it yields until one is freed; it
// fails only if the Coffer is destroyed meanwhile.
func (c *Coffer) takeSlot() (int, bool) {
	for !c.Destroyed() {
		used := c.slots.Load()
		if used == ^uint64(0) {
			runtime.Gosched()
			continue
		}
		slot := bits.TrailingZeros64(^used)
		if c.slots.CompareAndSwap(used, used|uint64(1)<<slot) {
			return slot, true
		}
	}
	return 0, false
}

// View returns a frozen Buffer holding a copy of the key. The caller
// destroys it.
func (c *Coffer) View() (*Buffer, error) {
	return newFrozenBuffer(keySize, func(view []byte) error {
		return c.WithKey(func(key []byte) error {
			copy(view, key)
			return nil
		})
	})
}

// Rekey replaces both shares with new random ones of the same XOR.
func (c *Coffer) Rekey() error {
	if c.Destroyed() {
		return ErrCofferDestroyed
	}
	// Same order as WithKey, store first, then shares: a Destroy waiting
	// on the store cannot then wedge the two against each other.
	err := c.store.WithData(func(mem []byte) error {
		c.shares.Lock()
		defer c.shares.Unlock()
		mask := mem[maskOffset:slotsOffset]
		defer wipeBytes(mask)
		if err := randomBytes(mask); err != nil {
			return err
		}
		subtle.XORBytes(mem[leftOffset:rightOffset], mem[leftOffset:rightOffset], mask)
		subtle.XORBytes(mem[rightOffset:maskOffset], mem[rightOffset:maskOffset], mask)
		c.rekeys.Add(1)
		return nil
	})
	if errors.Is(err, ErrDestroyed) {
		return ErrCofferDestroyed
	}
	return err
}

// Destroy stops the re-key goroutine, waits for it, and wipes and frees the
// key. Destroying again does nothing. It must not be called from inside
// this Coffer's WithKey callback.
func (c *Coffer) Destroy() error {
	var err error
	c.shutdown(func() { err = c.store.Destroy() })
	return err
}

// Destroyed reports whether the Coffer has been destroyed. A Coffer whose
// store a Purge took (even one that raced with NewCoffer) is destroyed.
func (c *Coffer) Destroyed() bool { return c == nil || c.destroyed.Load() || !c.store.Alive() }

// kill is Purge's Destroy: it never waits for a WithKey callback.
func (c *Coffer) kill() { c.shutdown(func() { unmapRegions(c.store.kill(nil)) }) }

// shutdown marks the Coffer destroyed, stops its goroutine and frees the
// store with free, once.
func (c *Coffer) shutdown(free func()) {
	if c == nil {
		return
	}
	c.once.Do(func() {
		c.destroyed.Store(true)
		close(c.stop)
		<-c.done
		free()
		coffers.mu.Lock()
		delete(coffers.set, c)
		coffers.mu.Unlock()
	})
}

// purgeCoffers kills every live Coffer.
func purgeCoffers() {
	coffers.mu.Lock()
	live := make([]*Coffer, 0, len(coffers.set))
	for c := range coffers.set {
		live = append(live, c)
	}
	coffers.mu.Unlock()
	for _, c := range live {
		c.kill()
	}
}
