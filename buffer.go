//go:build cgo

package memguard

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Buffer is a secret held in a guarded, locked region outside the Go heap.
//
// The region has an inaccessible guard page on each side and random canaries
// right before and after the data, checked on every access. Its pages are
// locked in RAM, left out of core dumps and zeroed in forked children (on
// Linux). The data is reachable only inside WithData and WithDataMut, and is
// wiped when the Buffer is destroyed.
//
// A Buffer is safe for concurrent use. Its methods never panic; on a nil
// *Buffer they behave as on a destroyed one.
type Buffer struct {
	// rw admits many readers (WithData, EqualTo, Verify) or one writer
	// (everything that changes the data, its protection, or frees it).
	rw sync.RWMutex
	// protMu orders protection changes and the unmap against Purge, which
	// wipes a buffer in use without taking rw.
	protMu sync.Mutex
	// dead is set once, by Destroy or Purge: no new access gets in, and
	// whoever leaves rw last frees the region.
	dead    atomic.Bool
	frozen  atomic.Bool
	corrupt atomic.Bool // a canary failure was counted for this buffer

	// A secluded Buffer is frozen and, while no reader is inside,
	// inaccessible (PROT_NONE): the first reader in makes it readable, the
	// last one out hides it again. Set once, by seclude, before sharing.
	secluded bool
	viewMu   sync.Mutex
	viewers  int // readers inside a secluded Buffer, under viewMu

	region  *region // nil once freed; written under rw and protMu
	data    []byte  // the secret, over C memory
	size    int
	freeErr error // from freeing: reported by the next Destroy
	slot    int   // index in the registry, under its lock
}

// NewBuffer returns a zero-filled, mutable Buffer of size bytes.
func NewBuffer(size int) (*Buffer, error) {
	if size < 1 {
		return nil, sizeError(size)
	}
	r, err := allocRegion(size)
	if err != nil {
		return nil, err
	}
	b := &Buffer{region: r, data: r.bytes(), size: size}
	buffers.add(b)
	return b, nil
}

// newFrozenBuffer returns a Buffer of size bytes filled by fill and then
// frozen. If anything fails (or fill panics), the Buffer is destroyed
// (wiped) and only the error is returned.
func newFrozenBuffer(size int, fill func([]byte) error) (*Buffer, error) {
	b, err := NewBuffer(size)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.Destroy()
		}
	}()
	if err := b.fillAndFreeze(fill); err != nil {
		return nil, err
	}
	ok = true
	return b, nil
}

// fillAndFreeze runs fill on the data, then freezes it, under one hold of
// the write lock: a concurrent Purge wipes the buffer but cannot unmap it
// under fill.
func (b *Buffer) fillAndFreeze(fill func([]byte) error) error {
	if err := b.lock(); err != nil {
		return err
	}
	defer b.unlock()
	if err := fill(b.data); err != nil {
		return err
	}
	if err := b.protect(protRO); err != nil {
		return err
	}
	b.frozen.Store(true)
	return nil
}

// NewBufferFromBytes copies src into a new frozen Buffer, then wipes src.
// Empty src gives ErrInvalidSize. On error src is left as it was.
func NewBufferFromBytes(src []byte) (*Buffer, error) {
	b, err := newFrozenBuffer(len(src), func(data []byte) error {
		copy(data, src)
		return nil
	})
	if err == nil {
		wipeBytes(src)
	}
	return b, err
}

// NewBufferRandom returns a frozen Buffer of size bytes from the kernel's
// CSPRNG.
func NewBufferRandom(size int) (*Buffer, error) {
	return newFrozenBuffer(size, randomBytes)
}

// WithData calls fn with the secret and returns fn's error unchanged. Many
// WithData calls may run at once. fn must not keep the slice, write to it,
// or call Destroy, Freeze or Melt on the same Buffer.
//
// If the Buffer is destroyed it returns ErrDestroyed, and if a canary is
// broken ErrCanaryCorrupt; in both cases fn is not called. If fn panics,
// the Buffer is released before the panic goes on.
func (b *Buffer) WithData(fn func(data []byte) error) error {
	if fn == nil {
		return ErrInvalidArgument
	}
	if b == nil {
		return ErrDestroyed
	}
	// rlock and runlock, written out: on this path, the hottest in the
	// package, each call saved is a nanosecond.
	b.rw.RLock()
	defer func() {
		b.rw.RUnlock()
		if b.dead.Load() {
			b.reap()
		}
	}()
	if b.dead.Load() {
		return ErrDestroyed
	}
	if b.secluded {
		return b.withRevealed(func() error { return b.readChecked(fn) })
	}
	return b.readChecked(fn)
}

// readChecked calls fn with the data if the canary next to it is intact.
// The caller holds rw.
func (b *Buffer) readChecked(fn func(data []byte) error) error {
	if !b.canaryIntact() {
		return b.noteCanary(ErrCanaryCorrupt)
	}
	return fn(b.data)
}

// withRevealed runs fn with a secluded Buffer readable. The caller holds rw
// for reading.
func (b *Buffer) withRevealed(fn func() error) error {
	b.viewMu.Lock()
	if b.viewers == 0 {
		if err := b.protect(protRO); err != nil {
			b.viewMu.Unlock()
			return err
		}
	}
	b.viewers++
	b.viewMu.Unlock()

	err := fn()

	b.viewMu.Lock()
	defer b.viewMu.Unlock()
	if b.viewers--; b.viewers == 0 {
		if herr := b.protect(protNone); err == nil {
			err = herr
		}
	}
	return err
}

// seclude makes a Buffer frozen and inaccessible while no reader is inside.
func (b *Buffer) seclude() error {
	if err := b.lock(); err != nil {
		return err
	}
	defer b.unlock()
	if err := b.protect(protNone); err != nil {
		return err
	}
	b.frozen.Store(true)
	b.secluded = true
	return nil
}

// WithDataMut is WithData for writing: fn has the Buffer to itself. A
// frozen Buffer gives ErrImmutable and fn is not called.
func (b *Buffer) WithDataMut(fn func(data []byte) error) error {
	if fn == nil {
		return ErrInvalidArgument
	}
	if err := b.lock(); err != nil {
		return err
	}
	defer b.unlock()
	if b.frozen.Load() {
		return ErrImmutable
	}
	if !b.canaryIntact() {
		return b.noteCanary(ErrCanaryCorrupt)
	}
	if err := b.protect(protRW); err != nil {
		return err
	}
	return fn(b.data)
}

// Freeze makes the data read-only in hardware: a write faults. Freezing a
// frozen Buffer does nothing.
func (b *Buffer) Freeze() error {
	if err := b.lock(); err != nil {
		return err
	}
	defer b.unlock()
	if b.secluded {
		return nil // frozen already, and hidden
	}
	if err := b.protect(protRO); err != nil {
		return err
	}
	b.frozen.Store(true)
	return nil
}

// Melt lets WithDataMut, Scramble and Wipe write to the data again. Melting
// a mutable Buffer does nothing.
//
// Melt is lazy: the pages stay read-only in hardware until the next write
// through this API makes them writable, so a Buffer melted and frozen
// again without a write in between makes no system call, and is never
// writable when nothing needs to write.
func (b *Buffer) Melt() error {
	if err := b.lock(); err != nil {
		return err
	}
	defer b.unlock()
	if b.secluded {
		return ErrImmutable
	}
	b.frozen.Store(false)
	return nil
}

// protect sets the pages' hardware protection if it differs. The caller
// holds rw, for writing or (for a secluded Buffer) reading.
func (b *Buffer) protect(p protection) error {
	b.protMu.Lock()
	defer b.protMu.Unlock()
	return b.region.protect(p)
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
// on the lengths.
func (b *Buffer) EqualTo(other []byte) (bool, error) {
	equal := false
	err := b.WithData(func(data []byte) error {
		equal = equalBytes(data, other)
		return nil
	})
	return equal, err
}

// Verify checks now both canaries and the padding before the data, which
// WithData only samples next to the data. It returns ErrCanaryCorrupt if
// any was overwritten.
func (b *Buffer) Verify() error {
	if err := b.rlock(); err != nil {
		return err
	}
	defer b.runlock()
	if b.secluded {
		return b.withRevealed(func() error { return b.noteCanary(b.region.verify()) })
	}
	return b.noteCanary(b.region.verify())
}

// Destroy waits for calls in progress, checks the canaries, wipes the data
// and frees the region. A broken canary is reported as ErrCanaryCorrupt but
// the region is freed all the same. Destroying again does nothing.
//
// Destroy must not be called from inside WithData or WithDataMut on the same
// Buffer: it would wait for itself.
func (b *Buffer) Destroy() error {
	if b == nil {
		return nil
	}
	b.dead.Store(true)
	b.rw.Lock()
	defer b.rw.Unlock()
	b.release()
	err := b.freeErr
	b.freeErr = nil
	return err
}

// Alive reports whether the Buffer has not been destroyed.
func (b *Buffer) Alive() bool { return b != nil && !b.dead.Load() }

// Mutable reports whether the Buffer is alive and not frozen.
func (b *Buffer) Mutable() bool { return b.Alive() && !b.frozen.Load() }

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
	case b.frozen.Load():
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

// rlock enters as a reader of a live Buffer.
func (b *Buffer) rlock() error {
	if b == nil {
		return ErrDestroyed
	}
	b.rw.RLock()
	if b.dead.Load() {
		b.runlock()
		return ErrDestroyed
	}
	return nil
}

func (b *Buffer) runlock() {
	b.rw.RUnlock()
	if b.dead.Load() {
		b.reap()
	}
}

// lock enters as the only writer of a live Buffer.
func (b *Buffer) lock() error {
	if b == nil {
		return ErrDestroyed
	}
	b.rw.Lock()
	if b.dead.Load() {
		b.unlock()
		return ErrDestroyed
	}
	return nil
}

// unlock leaves rw, then frees the region if the Buffer died meanwhile.
// Unlocking before looking at dead matters: Purge sets dead before trying
// the lock, so one of the two always sees the other and frees.
func (b *Buffer) unlock() {
	b.rw.Unlock()
	if b.dead.Load() {
		b.reap()
	}
}

// reap frees a dead Buffer's region unless someone is still inside; the
// last one out reaps again.
func (b *Buffer) reap() {
	if b.rw.TryLock() {
		b.release()
		b.rw.Unlock()
	}
}

// release frees the region once. The caller holds rw for writing.
func (b *Buffer) release() {
	if r := b.detach(); r != nil {
		b.freeErr = b.noteCanary(releaseRegion(r))
	}
}

// kill is Purge's destroy: it never waits. An idle Buffer's region is
// detached and appended to batch, for the caller to unmap together with
// others; a Buffer in use is wiped under its user, who frees the region on
// leaving.
func (b *Buffer) kill(batch []*region) []*region {
	b.dead.Store(true)
	if b.rw.TryLock() {
		if r := b.detach(); r != nil {
			retireRegion(r)
			batch = append(batch, r)
		}
		b.rw.Unlock()
		return batch
	}
	b.protMu.Lock()
	if b.region != nil {
		b.region.wipeData()
	}
	b.protMu.Unlock()
	return batch
}

// detach takes the region out of the Buffer and the registry for the
// caller to free, or returns nil if it is gone already. The caller holds rw
// for writing. Once region is nil under protMu, Purge's wipe of a busy
// Buffer no longer touches it, so freeing it needs no lock.
func (b *Buffer) detach() *region {
	b.protMu.Lock()
	r := b.region
	b.region, b.data = nil, nil
	b.protMu.Unlock()
	if r != nil {
		buffers.remove(b)
	}
	return r
}

// canaryIntact compares the canary bytes next to the data: two word
// compares and the short tail, no cgo call, and small enough to inline.
// Comparing the tail byte by byte avoids a call to the runtime's memequal.
// The caller holds rw.
func (b *Buffer) canaryIntact() bool {
	r := b.region
	want := r.expectedCanary()
	if *r.leadCanary() != *want {
		return false
	}
	for i, c := range r.tailCanary() {
		if c != want[i] {
			return false
		}
	}
	return true
}

// noteCanary counts the first canary failure of this Buffer in Stats.
func (b *Buffer) noteCanary(err error) error {
	if err == ErrCanaryCorrupt && b.corrupt.CompareAndSwap(false, true) {
		canaryFailures.Add(1)
	}
	return err
}
