//go:build cgo

package memguard

import (
	"fmt"
	"io"
	"runtime"
	"sync"
)

// Buffer is a secret held in a guarded, locked region outside the Go heap.
//
// The region has an inaccessible guard page on each side and random canaries
// right before and after the data, checked on every access. Its pages are
// locked in RAM, left out of core dumps and zeroed in forked children (on
// Linux). The data is reachable only inside WithData and WithDataMut, and is
// wiped when the Buffer is destroyed.
//
// Options given to its constructor, or set by SetDefaultOptions, add
// protections: NoAccessWhenIdle keeps the data inaccessible between calls,
// SecretMemory takes it out of the kernel's direct map. Compact trades the
// region for a slot of a shared chunk, with a canary instead of guard
// pages between secrets and Freeze enforced by the API only. Every method
// behaves the same whatever the options.
//
// A Buffer that becomes unreachable without Destroy is wiped and freed by
// the garbage collector, and counted in Stats().Reclaimed: call Destroy as
// soon as a secret is no longer needed, since the collector may take long.
//
// A Buffer is safe for concurrent use. Its methods never panic; on a nil
// *Buffer or a zero Buffer they behave as on a destroyed one.
type Buffer struct {
	// The state lives apart from the handle so that the registry, which
	// Purge walks, holds the state and not the handle: an unreachable
	// handle lets its cleanup wipe the state (reclaim.go).
	// A copy of the handle would share the state but not the cleanup,
	// which frees the state when the original becomes unreachable: go vet
	// reports copies. First, since a zero-size last field would be padded.
	_ [0]sync.Mutex
	*bufferState
}

// newBuffer allocates the state for size bytes stored as st and wraps it
// in a handle. The data is writable and, even for NoAccessWhenIdle, not yet
// hidden: the constructor fills it first.
func newBuffer(size int, st storage) (*Buffer, error) {
	if size < 1 {
		return nil, sizeError(size)
	}
	s := &bufferState{size: size, secluded: st.noAccess}
	if err := s.alloc(size, st); err != nil {
		return nil, err
	}
	s.live.Store(true)
	b := &Buffer{bufferState: s}
	buffers.add(s, b)
	return b, nil
}

// state is the Buffer's state, or nil for a nil or zero Buffer.
func (b *Buffer) state() *bufferState {
	if b == nil {
		return nil
	}
	return b.bufferState
}

// NewBuffer returns a zero-filled, mutable Buffer of size bytes, protected
// as opts say (or the defaults, if none are given: SetDefaultOptions).
func NewBuffer(size int, opts ...Option) (*Buffer, error) {
	st, err := storageFor(opts)
	if err != nil {
		return nil, err
	}
	b, err := newBuffer(size, st)
	if err != nil {
		return nil, err
	}
	if st.noAccess {
		if err := b.bufferState.hide(); err != nil {
			b.Destroy()
			return nil, err
		}
	}
	return b, nil
}

// newFrozenBuffer returns a Buffer of size bytes stored as st, filled by
// fill and then frozen. If anything fails (or fill panics), the Buffer is
// destroyed (wiped) and only the error is returned; a Buffer that Purge
// wiped during fill gives ErrDestroyed.
func newFrozenBuffer(size int, st storage, fill func([]byte) error) (*Buffer, error) {
	b, err := newBuffer(size, st)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.Destroy()
		}
	}()
	if err := b.bufferState.fillAndFreeze(fill); err != nil {
		return nil, err
	}
	ok = true
	return b, nil
}

// NewBufferFromBytes copies src into a new frozen Buffer, protected as opts
// (or the defaults) say, then wipes src. Empty src gives ErrInvalidSize. On
// error src is left as it was.
//
// src may be the data of another Buffer, handed in from its callback (the
// way to trim a secret). A frozen Buffer's data, read-only, and a compact
// Buffer's are copied and left as they are, since their owner wipes them
// on Destroy; a mutable Buffer's writable data is wiped as any source is.
// If Purge wiped that Buffer before or during the copy, the result is
// ErrDestroyed, never a copy of zeros. Read-only memory that is not a
// Buffer's gives ErrInvalidArgument.
func NewBufferFromBytes(src []byte, opts ...Option) (*Buffer, error) {
	st, err := storageFor(opts)
	if err != nil {
		return nil, err
	}
	b, err := newFrozenBuffer(len(src), st, func(data []byte) error {
		copy(data, src)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := wipeSource(src); err != nil {
		b.Destroy()
		return nil, err
	}
	return b, nil
}

// NewBufferRandom returns a frozen Buffer of size bytes from the kernel's
// CSPRNG, protected as opts (or the defaults) say.
func NewBufferRandom(size int, opts ...Option) (*Buffer, error) {
	st, err := storageFor(opts)
	if err != nil {
		return nil, err
	}
	return newFrozenBuffer(size, st, randomBytes)
}

// WithData calls fn with the secret and returns fn's error. Many WithData
// calls may run at once. fn must not keep the slice or write to it.
//
// If the Buffer is destroyed it returns ErrDestroyed, and if a canary is
// broken ErrCanaryCorrupt; in both cases fn is not called. If fn panics,
// the Buffer is released before the panic goes on.
//
// Purge does not wait for fn: it wipes the data at once, so fn may observe
// zeros, in part or in whole. If the Buffer was wiped at any time between
// fn's start and WithData's return, WithData returns ErrDestroyed,
// wrapping fn's error if fn returned one, and whatever fn computed must be
// discarded.
//
// Calls on one Buffer do not nest: fn must not call Destroy, Freeze, Melt,
// WithDataMut or Seal on the same Buffer, which would wait for fn itself,
// nor WithData, EqualTo or Verify, which deadlock if another goroutine's
// Destroy or write is queued between the two (a sync.RWMutex lets a
// waiting writer hold back new readers, so that writers are not starved).
func (b *Buffer) WithData(fn func(data []byte) error) error {
	if fn == nil {
		return ErrInvalidArgument
	}
	s := b.state()
	if s == nil {
		return ErrDestroyed
	}
	err := s.withData(fn)
	runtime.KeepAlive(b)
	return err
}

// WithDataMut is WithData for writing: fn has the Buffer to itself. A
// frozen Buffer gives ErrImmutable and fn is not called.
//
// As with WithData, Purge may wipe the data while fn runs, and fn may then
// observe zeros; WithDataMut returns ErrDestroyed (wrapping fn's error, if
// any), and whatever fn computed must be discarded.
func (b *Buffer) WithDataMut(fn func(data []byte) error) error {
	if fn == nil {
		return ErrInvalidArgument
	}
	s := b.state()
	if s == nil {
		return ErrDestroyed
	}
	err := s.withDataMut(fn)
	runtime.KeepAlive(b)
	return err
}

// Freeze makes the data read-only in hardware: a write faults. Freezing a
// frozen Buffer does nothing. A compact Buffer's page is shared with other
// secrets and stays writable: there Freeze makes WithDataMut, Scramble and
// Wipe return ErrImmutable, and a write through a kept slice is not
// stopped.
func (b *Buffer) Freeze() error {
	s := b.state()
	if s == nil {
		return ErrDestroyed
	}
	err := s.freeze()
	runtime.KeepAlive(b)
	return err
}

// Melt lets WithDataMut, Scramble and Wipe write to the data again. Melting
// a mutable Buffer does nothing.
//
// Melt is lazy: the pages stay read-only in hardware until the next write
// through this API makes them writable, so a Buffer melted and frozen
// again without a write in between makes no system call, and is never
// writable when nothing needs to write.
func (b *Buffer) Melt() error {
	s := b.state()
	if s == nil {
		return ErrDestroyed
	}
	err := s.melt()
	runtime.KeepAlive(b)
	return err
}

// Scramble overwrites the data with random bytes. Frozen: ErrImmutable.
func (b *Buffer) Scramble() error {
	return b.WithDataMut(randomBytes)
}

// Wipe zeroes the data. Frozen: ErrImmutable.
func (b *Buffer) Wipe() error {
	return b.WithDataMut(func(data []byte) error {
		wipeBytes(data)
		return nil
	})
}

// EqualTo reports whether the data equals other, in time that depends only
// on the lengths. If Purge wiped the data during the comparison, EqualTo
// returns false and ErrDestroyed: a comparison that may have run against
// wiped data never reports a match, nor a mismatch without an error.
func (b *Buffer) EqualTo(other []byte) (bool, error) {
	equal := false
	err := b.WithData(func(data []byte) error {
		equal = equalBytes(data, other)
		testPoint("EqualTo")
		return nil
	})
	return equal && err == nil, err
}

// Verify checks now both canaries and the padding before the data, which
// WithData only samples next to the data. It returns ErrCanaryCorrupt if
// any was overwritten, and ErrDestroyed if Purge wiped the Buffer while
// Verify was checking it.
func (b *Buffer) Verify() error {
	s := b.state()
	if s == nil {
		return ErrDestroyed
	}
	err := s.verify()
	runtime.KeepAlive(b)
	return err
}

// Destroy waits for calls in progress, checks the canaries, wipes the data
// and frees the region. A broken canary is reported as ErrCanaryCorrupt but
// the region is freed all the same. Destroying again does nothing.
//
// Destroy must not be called from inside WithData or WithDataMut on the same
// Buffer: it would wait for itself.
func (b *Buffer) Destroy() error {
	s := b.state()
	if s == nil {
		return nil
	}
	// The handle stays reachable until the state is dead, so that its
	// reclaim cleanup cannot run meanwhile, count the Buffer as leaked
	// and take what freeing found from this Destroy.
	defer runtime.KeepAlive(b)
	return s.destroy()
}

// Alive reports whether the Buffer has not been destroyed.
func (b *Buffer) Alive() bool {
	s := b.state()
	return s != nil && s.live.Load()
}

// Mutable reports whether the Buffer is alive and not frozen.
func (b *Buffer) Mutable() bool { return b.Alive() && !b.flag(flagFrozen) }

// Locked reports whether the Buffer is alive and its pages are locked in
// RAM. Under LockBestEffort a Buffer the kernel refused to lock is not.
func (b *Buffer) Locked() bool {
	s := b.state()
	if s == nil || s.rlock() != nil {
		return false
	}
	defer s.runlock()
	return s.lockedMemory()
}

// Size is the length of the secret in bytes, or 0 once destroyed.
func (b *Buffer) Size() int {
	if !b.Alive() {
		return 0
	}
	return b.size
}

// String describes the Buffer without its contents.
func (b *Buffer) String() string {
	switch {
	case !b.Alive():
		return "memguard.Buffer(destroyed)"
	case b.flag(flagFrozen):
		return fmt.Sprintf("memguard.Buffer(%d bytes, frozen)", b.size)
	default:
		return fmt.Sprintf("memguard.Buffer(%d bytes, mutable)", b.size)
	}
}

// Format prints String for every verb, so that no fmt verb, %#v and %x
// included, can print the contents.
func (b *Buffer) Format(f fmt.State, _ rune) {
	io.WriteString(f, b.String())
}
