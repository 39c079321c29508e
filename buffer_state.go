//go:build cgo

package memguard

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// bufferState is everything a Buffer is, apart from its handle: the locks,
// the flags and the region. The registry holds states, so Purge reaches
// every secret whether or not its handle is still reachable.
type bufferState struct {
	// rw admits many readers (WithData, EqualTo, Verify) or one writer
	// (everything that changes the data, its protection, or frees it).
	rw sync.RWMutex
	// protMu orders protection changes and the unmap against Purge, which
	// wipes a buffer in use without taking rw.
	protMu sync.Mutex
	// live is set at creation and cleared once, by Destroy, Seal or Purge:
	// no new access gets in. A zero state is not live, so a zero Buffer
	// behaves as destroyed.
	live atomic.Bool
	// flags holds the flag* bits below.
	flags atomic.Uint32

	// A secluded Buffer (NoAccessWhenIdle) is inaccessible (PROT_NONE)
	// while no call uses it: the first reader in makes it readable, the
	// last one out hides it again; a writer makes it writable and hides
	// it when done. Its pages are never left readable or writable by a
	// call that returned, except where the kernel refused to hide them,
	// and then the protection recorded in the region says so, so the next
	// call out tries again. Set at creation, before sharing.
	secluded bool
	// compact: the memory is arenaSlot, not region (buffer_memory.go).
	// Set at creation, before sharing.
	compact bool
	inWiped bool // memoryRange is in wipedMemory, put there by kill; under protMu
	// The registry's shard, set when registered and never changed, and
	// the index in it, written under the shard's lock. The 4-byte fields
	// and the flags sit together, and the data is found through region or
	// arenaSlot, so that the state fits a 112-byte size class.
	shard   uint8
	viewers int32 // readers inside a secluded Buffer, under protMu
	slot    int32

	region *region // nil once freed, and for a compact Buffer; written under rw and protMu
	size   int
	// freeErr is what freeing found, reported by the next Destroy; nil
	// if it found nothing. A pointer, since it is almost always nil.
	freeErr *error
	// arenaSlot is a compact Buffer's memory, zero once freed (or for a
	// Buffer that is not compact); freed under rw and protMu.
	arenaSlot slot
}

// The bits of bufferState.flags.
const (
	// flagWiped is set by Purge before it wipes the data under a user, so
	// that the user reports ErrDestroyed instead of what it read.
	flagWiped uint32 = 1 << iota
	flagFrozen
	// flagCorrupt: a canary failure was counted for this Buffer.
	flagCorrupt
	// flagReaping: reapWhenIdle was started for the Buffer.
	flagReaping
)

// flag reports whether bit f of the flags is set.
func (s *bufferState) flag(f uint32) bool { return s.flags.Load()&f != 0 }

// setFlag sets bit f and reports whether it was set already.
func (s *bufferState) setFlag(f uint32) bool { return s.flags.Or(f)&f != 0 }

// clearFlag clears bit f.
func (s *bufferState) clearFlag(f uint32) { s.flags.And(^f) }

// fillAndFreeze runs fill on the data, then freezes it, under one hold of
// the write lock: a concurrent Purge wipes the buffer but cannot unmap it
// under fill. Only Purge can kill a Buffer nobody else holds yet, so a
// Buffer no longer live here was purged (and is being wiped, if it is not
// already): ErrDestroyed.
func (s *bufferState) fillAndFreeze(fill func([]byte) error) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.unlock()
	if err := fill(s.bytes()); err != nil {
		return err
	}
	testPoint("fill")
	if err := s.freezeHeld(); err != nil {
		return err
	}
	if !s.live.Load() {
		return ErrDestroyed
	}
	return nil
}

func (s *bufferState) withData(fn func(data []byte) error) (err error) {
	// rlock and runlockChecked, written out: on this path, the hottest in
	// the package, each call saved is a nanosecond.
	s.rw.RLock()
	defer func() {
		s.rw.RUnlock()
		err = s.afterUse(err)
	}()
	if !s.live.Load() {
		return ErrDestroyed
	}
	switch {
	case s.secluded:
		return s.withRevealed(func() error { return s.readChecked(fn) })
	case s.compact:
		// readCompact written out for a secret that fills its slot (the
		// common key sizes); others take the call.
		if sl := &s.arenaSlot; sl.m.size == sl.m.cap {
			if !sl.filledIntact() {
				return s.noteCanary(ErrCanaryCorrupt)
			}
			return fn(sl.bytes())
		}
		return s.readCompact(fn)
	}
	// readChecked's guarded path, written out too.
	if !s.canaryIntact() {
		return s.noteCanary(ErrCanaryCorrupt)
	}
	return fn(s.region.bytes())
}

// afterUse is what a call that held the data reports, given err, what it
// would report otherwise: err, or ErrDestroyed if Purge wiped the data
// since the call came in (wrapping err, if err is not nil and not
// ErrDestroyed already), since then what the call computed may come from
// zeros. One atomic load when nothing was wiped.
//
// Purge sets flagWiped before it wipes, so a flag still clear here means
// every byte read before was whole. Callers load it after leaving rw: the
// atomic read-modify-write of the unlock keeps the call's reads of the
// data before this load also on CPUs that reorder loads (arm64), which a
// load alone would not. A Purge that lands after the call's last read but
// before this load also gives ErrDestroyed: the safe side.
func (s *bufferState) afterUse(err error) error {
	if s.flags.Load()&flagWiped == 0 {
		return err
	}
	return s.purgedDuringUse(err)
}

// purgedDuringUse is afterUse's result for a call whose data was wiped,
// out of line so that afterUse inlines: it frees the Buffer if the call
// was its last user.
func (s *bufferState) purgedDuringUse(err error) error {
	s.reapIfIdle()
	switch {
	case err == nil:
		return ErrDestroyed
	case errors.Is(err, ErrDestroyed):
		return err
	}
	return fmt.Errorf("%w: purged while in use: %w", ErrDestroyed, err)
}

// runlockChecked leaves rw as a reader and turns *err into afterUse's
// result: deferred by readers other than withData.
func (s *bufferState) runlockChecked(err *error) {
	s.rw.RUnlock()
	*err = s.afterUse(*err)
}

// unlockChecked is runlockChecked for the writer.
func (s *bufferState) unlockChecked(err *error) {
	s.rw.Unlock()
	*err = s.afterUse(*err)
}

// readChecked calls fn with the data if the canary next to it is intact.
// The caller holds rw, for reading or (withDataMut) writing. withData
// writes the guarded branch out itself, to save this call on the hottest
// path.
func (s *bufferState) readChecked(fn func(data []byte) error) error {
	if s.compact {
		return s.readCompact(fn)
	}
	if !s.canaryIntact() {
		return s.noteCanary(ErrCanaryCorrupt)
	}
	return fn(s.region.bytes())
}

// readCompact is readChecked for a compact Buffer.
func (s *bufferState) readCompact(fn func(data []byte) error) error {
	if !s.arenaSlot.canaryIntact() {
		return s.noteCanary(ErrCanaryCorrupt)
	}
	return fn(s.arenaSlot.bytes())
}

// withRevealed runs fn with a secluded Buffer readable. The caller holds rw
// for reading.
func (s *bufferState) withRevealed(fn func() error) (err error) {
	s.protMu.Lock()
	if s.viewers == 0 {
		if err := s.region.protect(protRO); err != nil {
			s.protMu.Unlock()
			return err
		}
	}
	s.viewers++
	s.protMu.Unlock()

	// The last reader out hides the pages, also when fn panics. If the
	// kernel refuses, they stay readable and recorded so (region.protect
	// records only what the kernel did), and the next reader in finds them
	// revealed and the next last one out tries again: no state claims idle
	// pages hidden while they are not. A secluded Buffer is never compact,
	// and its region stays while a reader holds rw.
	defer func() {
		s.protMu.Lock()
		defer s.protMu.Unlock()
		if s.viewers--; s.viewers == 0 {
			if herr := s.region.protect(protNone); err == nil {
				err = herr
			}
		}
	}()
	return fn()
}

// hideAfter makes a secluded Buffer's pages inaccessible again after a use
// that revealed them, and returns the use's error, or else the kernel's
// refusal to hide them. The caller holds rw.
func (s *bufferState) hideAfter(err error) error {
	if !s.secluded {
		return err
	}
	if herr := s.protect(protNone); err == nil {
		err = herr
	}
	return err
}

// hide makes a new secluded Buffer's pages inaccessible.
func (s *bufferState) hide() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.unlock()
	return s.hideAfter(nil)
}

func (s *bufferState) withDataMut(fn func(data []byte) error) (err error) {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.unlockChecked(&err)
	if s.flag(flagFrozen) {
		return ErrImmutable
	}
	// Writable first: a secluded Buffer's canary is not even readable
	// before. Hidden again however the call ends, a panic in fn included.
	defer func() { err = s.hideAfter(err) }()
	if err := s.protect(protRW); err != nil {
		return err
	}
	return s.readChecked(fn)
}

func (s *bufferState) freeze() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.unlock()
	return s.freezeHeld()
}

// freezeHeld makes the pages read-only and marks the Buffer frozen. The
// caller holds rw for writing. A secluded Buffer's pages are hidden when
// idle; after a hide the kernel refused, they are hidden now.
func (s *bufferState) freezeHeld() error {
	p := protRO
	if s.secluded {
		p = protNone
	}
	if err := s.protect(p); err != nil {
		return err
	}
	s.setFlag(flagFrozen)
	return nil
}

// melt is lazy: the pages become writable at the next write through the
// API (withDataMut), and a secluded Buffer's are hidden again after it.
func (s *bufferState) melt() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.unlock()
	s.clearFlag(flagFrozen)
	return nil
}

// protect sets the pages' hardware protection if it differs. The caller
// holds rw, for writing or (for a secluded Buffer) reading.
func (s *bufferState) protect(p protection) error {
	if s.compact { // a slot's page is its neighbours' too: never protected for one
		return nil
	}
	s.protMu.Lock()
	defer s.protMu.Unlock()
	return s.region.protect(p)
}

// verify checks the canaries and padding. A Buffer wiped meanwhile is
// ErrDestroyed, as for any call that held the data: its check proved
// nothing about a Buffer that no longer exists.
func (s *bufferState) verify() (err error) {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.runlockChecked(&err)
	defer testPoint("Verify")
	if s.secluded {
		return s.withRevealed(func() error { return s.noteCanary(s.verifyMemory()) })
	}
	return s.noteCanary(s.verifyMemory())
}

// destroy waits for users to leave, then frees the region; it reports, once,
// what freeing found.
func (s *bufferState) destroy() error {
	testPoint("destroy")
	s.live.Store(false)
	s.rw.Lock()
	s.release()
	var err error
	if s.freeErr != nil {
		err, s.freeErr = *s.freeErr, nil
	}
	s.rw.Unlock()
	return err
}

// rlock enters as a reader of a live Buffer.
func (s *bufferState) rlock() error {
	s.rw.RLock()
	if !s.live.Load() {
		s.runlock()
		return ErrDestroyed
	}
	return nil
}

// runlock leaves rw as a reader, and frees the memory on the way out of a
// Buffer that Purge wiped under its users (afterUse does the same).
func (s *bufferState) runlock() {
	s.rw.RUnlock()
	if s.flag(flagWiped) {
		s.reapIfIdle()
	}
}

// lock enters as the only writer of a live Buffer. A dead one is refused
// before waiting: Purge may have killed it while a callback still reads.
func (s *bufferState) lock() error {
	if !s.live.Load() {
		return ErrDestroyed
	}
	s.rw.Lock()
	if !s.live.Load() {
		s.unlock()
		return ErrDestroyed
	}
	return nil
}

// unlock is runlock for the writer.
func (s *bufferState) unlock() {
	s.rw.Unlock()
	if s.flag(flagWiped) {
		s.reapIfIdle()
	}
}

// reapIfIdle frees a Buffer that Purge wiped under its users, if none is
// left; a call on its way out of one calls it, after leaving rw.
//
// Purge sets flagWiped and then tries the lock once more, so either it
// frees the Buffer or a user was still inside when the flag was set, and
// that user comes here after leaving. A TryLock fails while another user
// is inside, but also while another TryLock holds the writer's mutex to
// count the readers, and sync.RWMutex does not tell the two apart: two
// leaving at once could each fail on the other and leave the Buffer to
// nobody. So whoever fails starts reapWhenIdle, once per Buffer, which
// frees it as soon as nobody holds it. A single user's call frees the
// Buffer before it returns, unless its TryLock meets Purge's; a Buffer
// that several calls used is freed by the last, or a moment after it.
func (s *bufferState) reapIfIdle() {
	if !s.freeIfIdle() && !s.setFlag(flagReaping) {
		go s.reapWhenIdle()
	}
}

// freeIfIdle frees the memory if nobody holds rw, and reports whether it
// took the lock to do so.
func (s *bufferState) freeIfIdle() bool {
	if !s.rw.TryLock() {
		return false
	}
	s.release()
	s.rw.Unlock()
	return true
}

// reapWhenIdle tries the lock until nobody holds the Buffer, then frees
// it. It only tries: a goroutine waiting in Lock would hold back every
// new reader, who then could not even learn that the Buffer is dead.
func (s *bufferState) reapWhenIdle() {
	for wait := time.Duration(0); !s.freeIfIdle(); {
		if wait == 0 {
			runtime.Gosched()
			wait = time.Microsecond
			continue
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
	testPoint("reaped")
}

// release frees the memory once. The caller holds rw for writing. The
// memory of a Buffer that Purge wiped under its users, freed once they
// leave, goes to no cache, and the arenas' spare chunks go too, as Purge
// itself did: nothing of what Purge ended stays mapped and locked.
func (s *bufferState) release() {
	purged := s.flag(flagWiped)
	if r := s.detach(); r != nil {
		s.noteFree(releaseRegion(r, !purged))
	}
	if purged && s.compact {
		compactArenas.trim()
	}
}

// kill is Purge's destroy: it never waits. An idle Buffer's region is
// detached and appended to batch, for the caller to unmap together with
// others; a Buffer in use is wiped under its users, who report
// ErrDestroyed, and freed by the last of them on its way out
// (reapIfIdle).
func (s *bufferState) kill(batch []*region) []*region {
	s.live.Store(false)
	if s.rw.TryLock() {
		if r := s.detach(); r != nil {
			retireRegion(r)
			batch = append(batch, r)
		}
		s.rw.Unlock()
		return batch
	}
	s.setFlag(flagWiped)
	s.protMu.Lock()
	if r, ok := s.memoryRange(); ok && !s.inWiped {
		s.inWiped = true
		wipedMemory.add(r)
	}
	if s.region != nil {
		s.region.wipeData()
	}
	s.arenaSlot.wipe() // a zero slot, freed or never held, has no bytes
	s.protMu.Unlock()
	s.freeIfIdle() // a user that left before the flag was set did not look for it
	return batch
}

// detach takes the region out of the Buffer and the registry for the
// caller to free, or returns nil if it is gone already. The caller holds rw
// for writing. Once region is nil under protMu, Purge's wipe of a busy
// Buffer no longer touches it, so freeing it needs no lock.
func (s *bufferState) detach() *region {
	s.protMu.Lock()
	if s.inWiped {
		if r, ok := s.memoryRange(); ok {
			s.inWiped = false
			wipedMemory.remove(r)
		}
	}
	r := s.region
	s.region = nil
	held := r != nil || s.releaseSlot()
	s.protMu.Unlock()
	if held {
		buffers.remove(s)
	}
	return r
}

// bytes is the secret, over C memory, or nil once freed. The caller holds
// rw.
func (s *bufferState) bytes() []byte {
	switch {
	case s.compact:
		return s.arenaSlot.bytes() // empty once freed
	case s.region != nil:
		return s.region.bytes()
	}
	return nil
}

// noteFree keeps what freeing the memory found, if anything, for the next
// Destroy to report, and counts a canary failure. The caller holds rw for
// writing.
func (s *bufferState) noteFree(err error) {
	if err = s.noteCanary(err); err != nil {
		s.freeErr = new(error) // only here, so that err itself stays on the stack
		*s.freeErr = err
	}
}

// canaryIntact compares a region's canary bytes next to the data: two word
// compares and the short tail, no cgo call, and small enough to inline.
// Comparing the tail byte by byte avoids a call to the runtime's memequal.
// The caller holds rw.
func (s *bufferState) canaryIntact() bool {
	r := s.region
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
func (s *bufferState) noteCanary(err error) error {
	if err == ErrCanaryCorrupt && !s.setFlag(flagCorrupt) {
		canaryFailures.Add(1)
	}
	return err
}
