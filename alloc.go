//go:build cgo

package memguard

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securememory/memguard/internal/procfs"
)

// LockPolicy says what to do when the kernel refuses to lock memory.
type LockPolicy int32

const (
	// LockRequired fails the allocation with ErrMemoryLock. The default.
	LockRequired LockPolicy = iota
	// LockBestEffort keeps the memory unlocked (it may then be swapped
	// out) and counts it in Stats().UnlockedBuffers.
	LockBestEffort
	// LockDisabled never locks memory.
	LockDisabled
)

var lockPolicy atomic.Int32

// SetLockPolicy sets how later allocations treat an mlock refusal. Buffers
// that already exist keep their memory as it is. A value other than the
// three above is treated as LockRequired, the safe choice.
func SetLockPolicy(p LockPolicy) {
	if p < LockRequired || p > LockDisabled {
		p = LockRequired
	}
	lockPolicy.Store(int32(p))
}

// counters behind Stats.
var (
	liveBuffers     atomic.Int64
	lockedBytes     atomic.Int64
	unlockedBuffers atomic.Int64
	cachedRegions   atomic.Int64
	canaryFailures  atomic.Int64
	lockFailures    atomic.Int64
	reclaimed       atomic.Int64 // Buffers and Coffers the collector freed
	rekeyFailures   atomic.Int64
	secretBuffers   atomic.Int64 // live regions of secret memory
	secretFallbacks atomic.Int64 // SecretMemory allocations given ordinary pages, ever
	// mappedRegions counts regions mapped, live and cached: mapRegion
	// reserves one before it maps, so concurrent callers cannot overshoot
	// maxRegions.
	mappedRegions atomic.Int64
)

// The cache keeps regions of destroyed buffers, wiped but still mapped,
// guarded and locked, so that the next allocation of the same page count
// and class makes no system call. It is bounded in regions and in bytes, emptied by
// Purge, and emptied before any allocation the kernel refuses is retried.
const (
	cacheMaxRegions = 256
	cacheMaxBytes   = 4 << 20
)

var cache struct {
	mu    sync.Mutex
	byKey map[cacheKey][]*region
	bytes atomic.Int64 // changed under mu; read without it by cacheHasRoom
}

// class is the kind of memory a region's data pages are. Regions of
// different classes never stand in for each other, in the cache or
// anywhere else.
type class uint8

const (
	classOrdinary class = iota // anonymous pages, locked as the lock policy says
	classSecret                // memfd_secret pages, locked by the kernel
)

func (r *region) class() class {
	if r.secret != 0 {
		return classSecret
	}
	return classOrdinary
}

// storage is the policy's decision for one secret, made once per call from
// its options (options.go) before anything is allocated: the memory its
// data lives in and how the Buffer guards it between calls.
type storage struct {
	class    class
	fallback bool // classSecret: ordinary pages where secret memory is refused
	noAccess bool // PROT_NONE while no call uses the data (bufferState.secluded)
	// compact, unless notCompact, puts the secret in a slot of the
	// compact arena (compact.go), in memory of class; allocRegion below
	// never sees it.
	compact compactMode
}

// compactMode is whether a secret goes to a slot, and what a size no slot
// holds gets: storage.sized decides. (One field, not two bools: Go keeps
// a struct of at most four fields in registers, and storage is on the
// path of every constructor.)
type compactMode uint8

const (
	notCompact       compactMode = iota
	compactAlways                // Compact given to the call: ErrInvalidSize
	compactWhereFits             // Compact from the defaults: a region
)

// allocRegion returns a region of its own (guard pages on both sides,
// ordinary or secret data pages, cached by page count and class) for a
// secret of size bytes stored as st, and accounts for it. Compact secrets
// go through allocCompact instead (compact.go).
func allocRegion(size int, st storage) (*region, error) {
	r, err := allocGuarded(size, st)
	if err != nil {
		return nil, err
	}
	account(r, 1)
	return r, nil
}

// account adds r to the live accounts (d = 1) or takes it out (d = -1).
func account(r *region, d int64) {
	liveBuffers.Add(d)
	if r.lockedBytes() == 0 {
		unlockedBuffers.Add(d)
	}
	if r.secret != 0 {
		secretBuffers.Add(d)
	}
}

// allocGuarded takes secret memory if st asks for it, and ordinary pages if it
// does not, or if it allows a fallback and secret memory is refused for a
// reason ordinary pages are not: unsupported here, or over RLIMIT_MEMLOCK
// under a policy that accepts unlocked memory (LockRequired would refuse
// ordinary pages over the limit just the same).
func allocGuarded(size int, st storage) (*region, error) {
	policy := LockPolicy(lockPolicy.Load())
	if st.class != classSecret {
		return allocClass(size, classOrdinary, policy)
	}
	r, err := allocClass(size, classSecret, policy)
	if !fallsBack(err, st, policy) {
		return r, err
	}
	r, err = allocClass(size, classOrdinary, policy)
	return r, countFallback(err)
}

// fallsBack reports whether a refusal of secret memory is one that st lets
// ordinary pages answer: secret memory unavailable, or over RLIMIT_MEMLOCK
// under a policy that accepts unlocked memory (LockRequired would refuse
// ordinary pages over the limit just the same).
func fallsBack(err error, st storage, policy LockPolicy) bool {
	return err != nil && st.fallback &&
		(errors.Is(err, errors.ErrUnsupported) || errors.Is(err, ErrMemoryLock) && policy != LockRequired)
}

// countFallback counts a fallback to ordinary memory that succeeded.
func countFallback(err error) error {
	if err == nil {
		secretFallbacks.Add(1)
	}
	return err
}

// allocClass returns a region of class c under the policy, from the cache
// if it can. Live secrets come before the cache: when the kernel refuses
// a lock or a mapping, the cache is emptied and the allocation retried
// before it fails or settles for unlocked memory. Secret memory is never
// unlocked, so under LockBestEffort a refusal of it stays ErrMemoryLock.
func allocClass(size int, c class, policy LockPolicy) (*region, error) {
	r, err := takeCached(size, c, policy)
	if r != nil || err != nil {
		return r, err
	}
	flags := mapSecret
	if c == classOrdinary {
		flags = 0
		if policy != LockDisabled {
			flags = mapLock
		}
	}
	r, err = mapRegion(size, flags)
	if refusedForRoom(err) {
		r, err = mapUnderPressure(size, flags)
	}
	if errors.Is(err, ErrMemoryLock) {
		lockFailures.Add(1)
		if policy == LockBestEffort && c == classOrdinary {
			r, err = mapRegion(size, 0)
		}
	}
	return r, err
}

// lockPressure counts allocations retrying after the kernel refused a lock
// or a mapping. While any does, released regions are unmapped, not cached,
// so that what they held goes back to the kernel for the live secret.
var lockPressure atomic.Int32

// refusedForRoom reports whether err is a refusal that freeing locked pages
// or mappings can cure.
func refusedForRoom(err error) bool {
	return err != nil && (errors.Is(err, ErrMemoryLock) || errors.Is(err, ErrOutOfMemory))
}

// releasing counts releases under way, of a region between leaving the
// live accounts and being cached or unmapped, or of a drained cache: locked
// pages the kernel still charges, that will be free within microseconds;
// released counts the releases finished.
var (
	releasing atomic.Int32
	released  atomic.Uint64
)

// pressureRetries bounds mapUnderPressure's wait for other goroutines'
// releases to finish: a few yields, then short sleeps, for a goroutine
// descheduled in the middle of a release; about 5 ms in all.
const (
	pressureRetries = 64
	pressureYields  = 8
	pressureSleep   = 100 * time.Microsecond
)

// mapUnderPressure retries a refused mapping with the cache handed back,
// and with releases elsewhere kept out of the cache meanwhile. It gives up
// at once when nothing was drained and nothing is being released: a limit
// that live secrets alone fill fails as fast as a syscall.
func mapUnderPressure(size int, flags mapFlags) (r *region, err error) {
	err = retryForRoom(regionPagesFor(size), func() (err error) {
		r, err = mapRegion(size, flags)
		return err
	})
	return r, err
}

// retryForRoom runs try, which the kernel refused for room, again and again
// as mapUnderPressure says, for an allocation of need bytes of pages.
func retryForRoom(need int, try func() error) error {
	lockPressure.Add(1)
	defer lockPressure.Add(-1)
	var err error
	for i := 0; i < pressureRetries; i++ {
		drained := drainCache()
		done := released.Load() // after drainCache's own release
		if err = try(); !refusedForRoom(err) {
			break
		}
		if drained == 0 && releasing.Load() == 0 && released.Load() == done && !lockRoomExpected(need) {
			break
		}
		if i < pressureYields {
			runtime.Gosched()
		} else {
			time.Sleep(pressureSleep)
		}
	}
	return err
}

// lockRoomExpected reports whether, by the library's own count of locked
// bytes, the limit has room for need more: then a refusal can only be
// pages another goroutine is mapping or unmapping this instant.
func lockRoomExpected(need int) bool {
	limit := memlockLimit()
	if limit == MemlockUnlimited {
		return false
	}
	locked := lockedBytes.Load() + int64(compactArenas.usage().locked)
	return uint64(locked)+uint64(need) <= limit
}

// The library's regions leave a sixteenth of vm.max_map_count to the rest
// of the process. Once every mapping is taken, the Go runtime's next mmap
// (for heap growth, a collection's bookkeeping, a thread's stack) fails,
// and the runtime kills the process (TestMapCountLimit's child runs into
// the limit and must survive it). A region takes 2 mappings, its data
// and its trailing guard page merged with the next region's leading one
// (benchmarks/memory.go measures 2.00); a process with more than the
// reserve of other mappings meets the kernel's limit first, and gets
// ErrOutOfMemory from it.
const mappingsPerRegion = 2

// mapCount is vm.max_map_count, read once; 0 where there is none.
var mapCount = sync.OnceValue(procfs.MaxMapCount)

// maxRegions is how many regions the library maps at most, or 0 for no
// bound.
var maxRegions = func() int64 {
	n := int64(mapCount())
	return (n - n/16) / mappingsPerRegion
}

// mapRegion maps a fresh region and counts its locked pages. It refuses
// once the library holds maxRegions.
func mapRegion(size int, flags mapFlags) (*region, error) {
	if limit := maxRegions(); mappedRegions.Add(1) > limit && limit > 0 {
		mappedRegions.Add(-1)
		return nil, &osError{kind: ErrOutOfMemory, op: "map", size: size, err: &mapCountError{regions: limit, mapCount: int64(mapCount())}}
	}
	r, err := newRegion(size, flags)
	if err != nil {
		mappedRegions.Add(-1)
		return nil, err
	}
	lockedBytes.Add(int64(r.lockedBytes()))
	return r, nil
}

// serves reports whether a cached region is what a fresh allocation of its
// class under the policy would give: secret memory always (the kernel
// locks it whatever the policy); ordinary pages unlocked under
// LockDisabled, locked otherwise. An unlocked region never serves
// LockBestEffort, which must try to lock first: best effort settles for
// unlocked memory only when the kernel refuses, with the cache already
// handed back.
func (p LockPolicy) serves(r *region) bool {
	return r.secret != 0 || (r.lockedBytes() > 0) == (p != LockDisabled)
}

// cacheKey sorts cached regions: only a region of the same data pages and
// class can serve an allocation. It is one int, pages (a multiple of the
// page size) with the class in its low bits, because the runtime's maps
// look up int keys faster than structs, and NewBuffer+Destroy looks up
// two.
type cacheKey int

func keyFor(pages int, c class) cacheKey { return cacheKey(pages | int(c)) }

// pages is the bytes of data pages of the regions under k.
func (k cacheKey) pages() int { return int(k) &^ int(classMask) }

// classMask covers the classes in a cacheKey's low bits; a page is larger.
// The array below fails to compile if a class outgrows it.
const classMask = 1

var _ [classMask - int(classSecret)]struct{}

// takeCached pops a cached region of class c that fits size and the
// policy, and lays it out for size.
func takeCached(size int, c class, policy LockPolicy) (*region, error) {
	key := keyFor(regionPagesFor(size), c)
	cache.mu.Lock()
	var r *region
	stack := cache.byKey[key]
	for i := len(stack) - 1; i >= 0; i-- {
		if policy.serves(stack[i]) {
			r = stack[i]
			stack[i] = stack[len(stack)-1]
			stack[len(stack)-1] = nil
			cache.byKey[key] = stack[:len(stack)-1]
			cache.bytes.Add(-int64(key.pages()))
			break
		}
	}
	cache.mu.Unlock()
	if r == nil {
		return nil, nil
	}
	cachedRegions.Add(-1)
	if err := r.place(size); err != nil {
		unmapRegion(r)
		return nil, err
	}
	return r, nil
}

// retireRegion takes r out of the live accounts.
func retireRegion(r *region) { account(r, -1) }

// releaseRegion takes r out of the live accounts and releases it
// (releaseGuarded), into the cache only if cache says it may go there.
func releaseRegion(r *region, cache bool) error {
	releasing.Add(1)
	defer endRelease()
	retireRegion(r)
	return releaseGuarded(r, cache)
}

// releaseGuarded checks r's canaries and wipes it: into the cache if cache
// allows it, it is intact, the lock policy now in force could reuse it,
// and there is room; unmapped otherwise.
func releaseGuarded(r *region, cache bool) error {
	var err error
	// A region the cache has no room for is only verified: free wipes
	// every page that held data, and clearing it first would wipe twice.
	if cache && cacheable(r) && cacheHasRoom(int(r.pages_len)) {
		if err = r.recycle(); err == nil && cacheRegion(r) {
			return nil
		}
	} else if err = r.protect(protRW); err == nil {
		err = r.verify() // readable now, even if it was secluded
	}
	if ferr := unmapRegion(r); err == nil {
		err = ferr
	}
	return err
}

// cacheable reports whether r may wait in the cache: the lock policy now in
// force could reuse it, and its locked pages are not wanted by a live
// secret, one retrying for a lock now or one left unlocked by best effort.
func cacheable(r *region) bool {
	if !LockPolicy(lockPolicy.Load()).serves(r) {
		return false
	}
	return r.lockedBytes() == 0 || lockPressure.Load() == 0 && unlockedBuffers.Load() == 0
}

// cacheHasRoom reports whether a region of pages bytes fits in the cache
// now. Without the lock it can be out of date; cacheRegion decides.
func cacheHasRoom(pages int) bool {
	return cachedRegions.Load() < cacheMaxRegions && cache.bytes.Load()+int64(pages) <= cacheMaxBytes
}

// cacheRegion keeps a recycled region if there is room.
func cacheRegion(r *region) bool {
	key := keyFor(int(r.pages_len), r.class())
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if !cacheHasRoom(key.pages()) {
		return false
	}
	if cache.byKey == nil {
		cache.byKey = make(map[cacheKey][]*region)
	}
	cache.byKey[key] = append(cache.byKey[key], r)
	cache.bytes.Add(int64(key.pages()))
	cachedRegions.Add(1)
	return true
}

// unmapRegion wipes and unmaps r, taking its locked pages out of the count.
func unmapRegion(r *region) error { return unmapRegions([]*region{r}) }

// unmapRegions is unmapRegion for many regions, in one batch.
func unmapRegions(rs []*region) error {
	n, locked := int64(len(rs)), int64(0)
	for _, r := range rs {
		locked += int64(r.lockedBytes())
	}
	// Accounted after the unmap, so that the budgets never count as free
	// what the kernel still holds.
	err := freeRegions(rs)
	lockedBytes.Add(-locked)
	mappedRegions.Add(-n)
	return err
}

// takeCache empties the cache and returns what it held.
func takeCache() []*region {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	var all []*region
	for key, stack := range cache.byKey {
		all = append(all, stack...)
		delete(cache.byKey, key)
	}
	cache.bytes.Store(0)
	cachedRegions.Add(-int64(len(all)))
	return all
}

// drainCache unmaps every cached region, gives the cached compact slots
// back and unmaps the arenas' spare chunks (arenaSet.trim), and reports
// how many regions and slots it handed back.
func drainCache() int {
	releasing.Add(1)
	defer endRelease()
	all := takeCache()
	unmapRegions(all)
	slots, _ := compactArenas.trim()
	return len(all) + slots
}

// endRelease ends a release counted in releasing.
func endRelease() {
	released.Add(1)
	releasing.Add(-1)
}
