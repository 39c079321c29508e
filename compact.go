//go:build cgo

package memguard

// Compact secrets: slots of the C core's arena (csrc/arena.c), for secrets
// of up to slotMax bytes. Many slots share one locked, guard-paged chunk,
// with a random canary between each slot and the next, so a small secret
// costs a slot's stride of locked memory instead of a page and a mapping.

/*
#include <stdint.h>
#include "csrc/memguard.h"

// An mg_slot as the calls below take it: the same bytes, in a type with no
// pointers. cgo checks every Go pointer to a type with pointers at each
// call, looking for Go pointers in what it points to, which costs more
// than the call itself. A slot holds pointers to C memory only, set by the
// core, so the check could never fail.
typedef struct {
	uintptr_t w[sizeof(mg_slot) / sizeof(uintptr_t)];
} slot_mem;
_Static_assert(sizeof(slot_mem) == sizeof(mg_slot), "slot_mem is an mg_slot");
_Static_assert(_Alignof(slot_mem) == _Alignof(mg_slot), "slot_mem is an mg_slot");

static int slot_alloc(mg_arena *a, size_t size, slot_mem *s)
{
	return mg_arena_alloc(a, size, (mg_slot *)s);
}

static int slot_check(const slot_mem *s)
{
	return mg_slot_check((const mg_slot *)s);
}

static int slot_free(slot_mem *s)
{
	return mg_arena_free((mg_slot *)s);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// slotMax is the largest secret a slot holds.
const slotMax = C.MG_ARENA_MAX

// slot is one compact secret: the core's mg_slot, 32 bytes on 64-bit
// systems. It lives in Go memory and is passed to the core by pointer,
// which cgo allows as it holds only pointers to C memory. It is not safe
// for concurrent use: free must not race with any other method, nor any
// method follow free but free and alloc.
//
// A live slot must not be copied: freeing the copy too would free the
// slot again, and if it had been reused for a secret of the same size, free
// that secret. go vet reports copies, as it does of a sync.Mutex.
type slot struct {
	_ [0]sync.Mutex // for go vet's copylocks check
	m C.mg_slot
}

// arenaSet holds one arena per way of mapping, each made on first use and
// kept for the life of the process: an arena maps no memory until a slot
// is allocated, and releases its chunks as they empty.
type arenaSet struct {
	mu sync.Mutex // serialises creation
	// Each a *C.mg_arena, nil until made; loaded and stored atomically.
	// (An atomic.Pointer cannot hold cgo's incomplete struct type.)
	arenas [numArenaKinds]unsafe.Pointer
	// Each arena's span (a *C.mg_span), stored before the arena: the
	// addresses that hold all its chunks, read without a cgo call.
	spans [numArenaKinds]unsafe.Pointer
	// cache holds slots of these arenas that compact Buffers gave back
	// (slotcache.go).
	cache slotCache
	// idle runs trimIdle a while after a slot came back (release).
	idle later
}

// arenaIdle is how long after a slot came back an arena set gives back
// its cached slots and the empty chunks its arenas keep: the locked
// memory compact secrets no longer use is released within about that.
const arenaIdle = 100 * time.Millisecond

// arenaKind is how an arena's chunks are mapped.
type arenaKind int

const (
	arenaLocked   arenaKind = iota // locked pages
	arenaUnlocked                  // pages not locked (LockDisabled, best effort)
	arenaSecret                    // memfd_secret pages, which the kernel locks
	numArenaKinds
)

// arenaFlags are the mapping flags of each kind of arena.
var arenaFlags = [numArenaKinds]mapFlags{
	arenaLocked:   mapLock,
	arenaUnlocked: 0,
	arenaSecret:   mapSecret,
}

// kindOf is the arena kind that flags ask for. Secret memory is locked
// whether or not mapLock is set.
func kindOf(flags mapFlags) arenaKind {
	switch {
	case flags&mapSecret != 0:
		return arenaSecret
	case flags&mapLock != 0:
		return arenaLocked
	default:
		return arenaUnlocked
	}
}

// compactArenas are the process's arenas.
var compactArenas arenaSet

// get returns the arena for flags, making it if this is the first call. A
// failure to make it (the core could not allocate its metadata) is not
// remembered: the next call tries again.
func (set *arenaSet) get(flags mapFlags) (*C.mg_arena, error) {
	k := kindOf(flags)
	if a := atomic.LoadPointer(&set.arenas[k]); a != nil {
		return (*C.mg_arena)(a), nil
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	if a := atomic.LoadPointer(&set.arenas[k]); a != nil {
		return (*C.mg_arena)(a), nil
	}
	var a *C.mg_arena
	st, errno := C.mg_arena_new(C.uint(arenaFlags[k]), &a)
	if st != C.MG_OK {
		return nil, statusError(st, errno, 0)
	}
	atomic.StorePointer(&set.spans[k], unsafe.Pointer(C.mg_arena_span(a)))
	atomic.StorePointer(&set.arenas[k], unsafe.Pointer(a))
	return a, nil
}

// destroy frees the set's arenas, and every slot in them, and empties the
// set; nothing may use the set or its slots meanwhile. The process's own
// arenas are never destroyed: this is for sets that tests make.
func (set *arenaSet) destroy() error {
	set.mu.Lock()
	defer set.mu.Unlock()
	set.cache.flush() // into arenas about to go, with every slot in them
	err := set.each(func(p *unsafe.Pointer) (C.int, error) {
		st, errno := C.mg_arena_destroy((*C.mg_arena)(atomic.SwapPointer(p, nil)))
		return st, errno
	})
	for k := range set.spans {
		atomic.StorePointer(&set.spans[k], nil)
	}
	return err
}

// trimIdle is trim, for a run that arenaSet.release asked for: under mu,
// since destroy may free the arenas meanwhile.
func (set *arenaSet) trimIdle() {
	set.mu.Lock()
	defer set.mu.Unlock()
	set.trim()
}

// release caches s, a live slot of the set, if cache allows it and the
// cache takes it (slotCache.give), or else frees it (slot.free); either
// way it asks for a trim arenaIdle later, so that neither the cached slot
// nor a chunk the core keeps empty for reuse stays locked for long.
func (set *arenaSet) release(s *slot, cache bool) error {
	defer runLater(&set.idle, arenaIdle, (*arenaSet).trimIdle, set)
	if cache && set.cache.give(s) {
		return nil
	}
	return s.free()
}

// trim gives the cached slots back, then unmaps the empty chunk each
// arena shard keeps per class for reuse. It reports how many slots it
// gave back, and the first chunk that could not be unmapped.
func (set *arenaSet) trim() (slots int, err error) {
	slots, err = set.cache.flush()
	if terr := set.each(func(p *unsafe.Pointer) (C.int, error) {
		st, errno := C.mg_arena_trim((*C.mg_arena)(atomic.LoadPointer(p)))
		return st, errno
	}); err == nil {
		err = terr
	}
	return slots, err
}

// each calls op on the place of every arena made so far, and returns the
// first failure among the statuses op returns.
func (set *arenaSet) each(op func(p *unsafe.Pointer) (C.int, error)) error {
	var first error
	for k := range set.arenas {
		if atomic.LoadPointer(&set.arenas[k]) == nil {
			continue
		}
		st, errno := op(&set.arenas[k])
		if err := statusError(st, errno, 0); first == nil {
			first = err
		}
	}
	return first
}

// allocSlot returns a zeroed slot for size bytes, 1 <= size <= slotMax,
// from the process's arena for flags (mapLock, mapSecret, or neither).
func allocSlot(size int, flags mapFlags) (*slot, error) {
	s := new(slot)
	if err := s.alloc(size, flags); err != nil {
		return nil, err
	}
	return s, nil
}

// alloc makes s, which must be zero (never allocated, or freed), a zeroed
// slot for size bytes, as allocSlot does. It lets a slot be a field of a
// larger struct instead of an object of its own.
func (s *slot) alloc(size int, flags mapFlags) error {
	return compactArenas.alloc(s, size, flags)
}

// alloc is slot.alloc from the set's arenas.
func (set *arenaSet) alloc(s *slot, size int, flags mapFlags) error {
	if size < 1 || size > slotMax {
		return sizeError(size)
	}
	if set.cache.take(s, size, kindOf(flags)) {
		return nil
	}
	a, err := set.get(flags)
	if err != nil {
		return err
	}
	st, errno := C.slot_alloc(a, C.size_t(size), s.c())
	if st == C.MG_OK {
		set.cache.remember(s)
		return nil
	}
	return statusError(st, errno, size)
}

// arenaUsage is what a set's arenas hold, by the core's count.
type arenaUsage struct {
	chunks      int // mappings
	mapped      int // bytes mapped, guard pages included
	locked      int // bytes locked: whole chunks, free slots included
	live        int // slots allocated
	quarantined int // slots freed with a broken canary, never reused
}

// usage sums the core's statistics over the set's arenas.
func (set *arenaSet) usage() arenaUsage {
	var u arenaUsage
	for k := range set.arenas {
		a := atomic.LoadPointer(&set.arenas[k])
		if a == nil {
			continue
		}
		var st C.mg_arena_stats
		C.mg_arena_stats_get((*C.mg_arena)(a), &st)
		u.chunks += int(st.chunks)
		u.mapped += int(st.mapped)
		u.locked += int(st.locked)
		u.live += int(st.live)
		u.quarantined += int(st.quarantined)
	}
	return u
}

// c is s as the calls in this file's preamble take it.
func (s *slot) c() *C.slot_mem { return (*C.slot_mem)(unsafe.Pointer(&s.m)) }

// bytes is the secret, as a slice over C memory, valid until free.
func (s *slot) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(s.m.data)), int(s.m.size))
}

// canaryIntact reports whether the bytes around the secret are as the core
// wrote them, the bytes mg_slot_check compares, without a cgo call: the
// lead canary before the data, then every byte from the end of the secret
// to the end of the tail canary, which is the tail canary repeated (the
// padding to the slot's capacity, then the tail canary itself). Like the
// core's check, it takes time that depends on the sizes only.
//
// A secret that fills its slot (32, 64, 128 or 256 bytes, the common key
// sizes) has no padding: its check is four word compares, with no loop;
// others go through canaryPadded.
func (s *slot) canaryIntact() bool {
	if s.m.size != s.m.cap {
		return s.canaryPadded()
	}
	return s.filledIntact()
}

// filledIntact is canaryIntact for a secret that fills its slot: the lead
// canary before the data and the tail canary right after it. Small enough
// to inline, so that bufferState.withData checks such a slot with no call.
func (s *slot) filledIntact() bool {
	d := unsafe.Pointer(s.m.data)
	lead := (*[2]uint64)(unsafe.Add(d, -canaryLen))
	tail := (*[2]uint64)(unsafe.Add(d, int(s.m.cap)))
	want := (*[4]uint64)(unsafe.Pointer(s.m.canary)) // lead, then tail
	return (lead[0]^want[0])|(lead[1]^want[1])|(tail[0]^want[2])|(tail[1]^want[3]) == 0
}

// at64 is the 8 bytes at p+off, in native order; p+off is 8-aligned.
func at64(p unsafe.Pointer, off int) uint64 { return *(*uint64)(unsafe.Add(p, off)) }

// canaryPadded is canaryIntact for a secret shorter than its slot.
func (s *slot) canaryPadded() bool {
	d, c := unsafe.Pointer(s.m.data), unsafe.Pointer(s.m.canary)
	tail := (*[canaryLen]byte)(unsafe.Add(c, canaryLen))
	diff := (at64(d, -canaryLen) ^ at64(c, 0)) | (at64(d, -8) ^ at64(c, 8))

	// d is MG_ALIGN-aligned and the span ends at a multiple of 16, so
	// after the bytes up to the next multiple of 8 it is whole words,
	// each half of the tail canary.
	b := unsafe.Slice((*byte)(d), int(s.m.cap)+canaryLen)
	k := int(s.m.size)
	var odd byte
	for ; k%8 != 0; k++ {
		odd |= b[k] ^ tail[k%canaryLen]
	}
	for ; k < len(b); k += 8 {
		diff |= *(*uint64)(unsafe.Pointer(&b[k])) ^ at64(c, canaryLen+k%canaryLen)
	}
	return diff|uint64(odd) == 0
}

// verify is the core's check of the slot's canaries and padding.
func (s *slot) verify() error {
	return statusError(C.slot_check(s.c()), nil, int(s.m.size))
}

// wipe zeroes the secret, leaving the padding and canaries.
func (s *slot) wipe() {
	wipeBytes(s.bytes())
}

// free checks the slot, wipes its data and padding and frees it, zeroing
// s. A broken canary is ErrCanaryCorrupt, and the slot is freed all the
// same (never to be reused); ErrProtection if the chunk it emptied could
// not be unmapped. Freeing a zero slot does nothing.
func (s *slot) free() error {
	if s.m.chunk == nil {
		return nil
	}
	size := int(s.m.size)
	st, errno := C.slot_free(s.c())
	if st == C.MG_EINVAL {
		return fmt.Errorf("%w: not a live compact slot", ErrInvalidArgument)
	}
	return statusError(st, errno, size)
}

// lockedBytes is the locked memory the slot stands for: its stride (the
// capacity and one canary) if its chunk is locked. The arenas lock whole
// chunks, so the sum over live slots leaves out their free slots;
// arenaSet.usage has the whole figure.
func (s *slot) lockedBytes() int {
	if s.m.locked == 0 {
		return 0
	}
	return int(s.m.cap) + canaryLen
}

// secretMemory reports whether the slot is in memfd_secret memory.
func (s *slot) secretMemory() bool { return s.m.secret != 0 }

// held reports whether s is a live slot: allocated and not yet freed.
func (s *slot) held() bool { return s.m.chunk != nil }

// The compact backend: Buffers whose storage says compact hold a slot of
// compactArenas by value in their state, and go through allocCompact and
// releaseCompact as guarded Buffers go through allocRegion and
// releaseRegion. Its live accounts are those of regions plus
// compactBuffers; its locked bytes are the arenas' (arenaSet.usage), whole
// chunks, free slots included, not a sum over live slots.

// compactBuffers counts live compact Buffers.
var compactBuffers atomic.Int64

// sized is st for a secret of size bytes, 1 <= size: compact only if a
// slot holds size. A larger size given Compact explicitly is
// ErrInvalidSize; from the defaults (compactWhereFits) it gets a region.
func (st storage) sized(size int) (storage, error) {
	if st.compact != notCompact && size > slotMax {
		return st.unslotted(size)
	}
	return st, nil
}

// unslotted is sized for a compact secret no slot holds, out of line so
// that sized inlines.
func (st storage) unslotted(size int) (storage, error) {
	if st.compact == compactAlways {
		return st, fmt.Errorf("%w: %d bytes: Compact holds secrets of at most %d bytes", ErrInvalidSize, size, slotMax)
	}
	st.compact = notCompact
	return st, nil
}

// allocCompact makes s, which must be zero, a zeroed slot for size bytes
// (1 <= size <= slotMax) stored as st, and accounts for it. The lock
// policy and AllowFallback act as for regions: secret memory if st asks
// for it, ordinary slots if it allows a fallback and secret memory is
// unsupported, or over RLIMIT_MEMLOCK under a policy that accepts
// unlocked memory; a refused lock first empties the region cache and
// tries again, and under LockBestEffort then settles for an unlocked
// slot, counted in LockFailures.
func allocCompact(s *slot, size int, st storage) error {
	policy := LockPolicy(lockPolicy.Load())
	if st.class != classSecret {
		return s.accounted(s.allocOrdinary(size, policy))
	}
	err := s.allocRetry(size, mapSecret)
	if !fallsBack(err, st, policy) {
		return s.accounted(err)
	}
	return s.accounted(countFallback(s.allocOrdinary(size, policy)))
}

// allocOrdinary makes s an ordinary slot under the policy.
func (s *slot) allocOrdinary(size int, policy LockPolicy) error {
	if policy == LockDisabled {
		return s.alloc(size, 0)
	}
	err := s.allocRetry(size, mapLock)
	if err != nil && errors.Is(err, ErrMemoryLock) {
		lockFailures.Add(1)
		if policy == LockBestEffort {
			err = s.alloc(size, 0)
		}
	}
	return err
}

// allocRetry is alloc, tried again as regions are, with the cache handed
// back, if the kernel refused a lock or a mapping: a new chunk needs at
// least a page.
func (s *slot) allocRetry(size int, flags mapFlags) error {
	err := s.alloc(size, flags)
	if refusedForRoom(err) {
		err = retryForRoom(int(pageSize), func() error { return s.alloc(size, flags) })
	}
	return err
}

// accounted adds the slot to the live accounts if err is nil, and returns
// err.
func (s *slot) accounted(err error) error {
	if err == nil {
		s.account(1)
	}
	return err
}

// account adds s to the live accounts (d = 1) or takes it out (d = -1).
func (s *slot) account(d int64) {
	liveBuffers.Add(d)
	compactBuffers.Add(d)
	if s.m.locked == 0 {
		unlockedBuffers.Add(d)
	}
	if s.secretMemory() {
		secretBuffers.Add(d)
	}
}

// releaseCompact takes a live slot out of the live accounts, then checks,
// wipes and, if cache allows it, caches it for the next compact secret,
// or else checks, wipes and frees it (arenaSet.release). A zero slot is
// left alone.
func releaseCompact(s *slot, cache bool) error {
	if !s.held() {
		return nil
	}
	s.account(-1)
	return compactArenas.release(s, cache)
}

// span is the slot's capacity, the bytes a secret of its class may occupy.
func (s *slot) span() memRange {
	return rangeOf(unsafe.Pointer(s.m.data), uintptr(s.m.cap))
}

// overlaps reports whether r overlaps a chunk of any arena: memory of the
// library's that a constructor must not wipe. Memory outside an arena's
// span, such as the Go heap, is told apart without a cgo call.
func (set *arenaSet) overlaps(r memRange) bool {
	for k := range set.arenas {
		a := atomic.LoadPointer(&set.arenas[k])
		if a == nil || !set.spanMeets(k, r) {
			continue
		}
		if C.mg_arena_overlaps_range((*C.mg_arena)(a), C.uintptr_t(r.start), C.size_t(r.end-r.start)) != 0 {
			return true
		}
	}
	return false
}

// spanMeets reports whether r meets the span of arena k, which is made.
func (set *arenaSet) spanMeets(k int, r memRange) bool {
	sp := (*C.mg_span)(atomic.LoadPointer(&set.spans[k]))
	lo := atomic.LoadUintptr((*uintptr)(unsafe.Pointer(&sp.lo)))
	hi := atomic.LoadUintptr((*uintptr)(unsafe.Pointer(&sp.hi)))
	return r.start < hi && lo < r.end
}
