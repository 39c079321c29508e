//go:build cgo

package memguard

import (
	"errors"
	"sync"
	"sync/atomic"

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
	// mappedRegions counts regions mapped, live and cached: mapRegion
	// reserves one before it maps, so concurrent callers cannot overshoot
	// maxRegions.
	mappedRegions atomic.Int64
)

// The cache keeps regions of destroyed buffers, wiped but still mapped,
// guarded and locked, so that the next allocation of the same page count
// makes no system call. It is bounded in regions and in bytes, emptied by
// Purge, and emptied before any allocation the kernel refuses is retried.
const (
	cacheMaxRegions = 256
	cacheMaxBytes   = 4 << 20
)

var cache struct {
	mu      sync.Mutex
	byPages map[int][]*region
	bytes   atomic.Int64 // changed under mu; read without it by cacheHasRoom
}

// allocRegion returns a region for size bytes under the lock policy, from
// the cache if it can, and accounts for it. Live secrets come before the
// cache: when the kernel refuses a lock or a mapping, the cache is emptied
// and the allocation retried before it fails or settles for unlocked
// memory.
func allocRegion(size int) (*region, error) {
	policy := LockPolicy(lockPolicy.Load())
	r, err := takeCached(size, policy)
	if r == nil && err == nil {
		lock := policy != LockDisabled
		r, err = mapRegion(size, lock)
		if (errors.Is(err, ErrMemoryLock) || errors.Is(err, ErrOutOfMemory)) && drainCache() > 0 {
			r, err = mapRegion(size, lock)
		}
		if errors.Is(err, ErrMemoryLock) {
			lockFailures.Add(1)
			if policy == LockBestEffort {
				r, err = mapRegion(size, false)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	liveBuffers.Add(1)
	if r.lockedBytes() == 0 {
		unlockedBuffers.Add(1)
	}
	return r, nil
}

// The library's regions leave a sixteenth of vm.max_map_count to the rest
// of the process. Once every mapping is taken, the Go runtime's next mmap
// (for heap growth, a collection's bookkeeping, a thread's stack) fails,
// and the runtime kills the process: TestMapCountLimit's child died so in
// 2 of 26 runs before this reserve. A region takes 2 mappings, its data
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
func mapRegion(size int, lock bool) (*region, error) {
	if limit := maxRegions(); mappedRegions.Add(1) > limit && limit > 0 {
		mappedRegions.Add(-1)
		return nil, &osError{kind: ErrOutOfMemory, op: "map", size: size, err: &mapCountError{regions: limit, mapCount: int64(mapCount())}}
	}
	var flags mapFlags
	if lock {
		flags = mapLock
	}
	r, err := newRegion(size, flags)
	if err != nil {
		mappedRegions.Add(-1)
		return nil, err
	}
	lockedBytes.Add(int64(r.lockedBytes()))
	return r, nil
}

// serves reports whether a cached region is what a fresh allocation under
// the policy would give: unlocked under LockDisabled, locked otherwise. An
// unlocked region never serves LockBestEffort, which must try to lock
// first: best effort settles for unlocked memory only when the kernel
// refuses, with the cache already handed back.
func (p LockPolicy) serves(r *region) bool {
	return (r.lockedBytes() > 0) == (p != LockDisabled)
}

// takeCached pops a cached region that fits size and the policy, and lays
// it out for size.
func takeCached(size int, policy LockPolicy) (*region, error) {
	pages := regionPagesFor(size)
	cache.mu.Lock()
	var r *region
	stack := cache.byPages[pages]
	for i := len(stack) - 1; i >= 0; i-- {
		if policy.serves(stack[i]) {
			r = stack[i]
			stack[i] = stack[len(stack)-1]
			stack[len(stack)-1] = nil
			cache.byPages[pages] = stack[:len(stack)-1]
			cache.bytes.Add(-int64(pages))
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
func retireRegion(r *region) {
	liveBuffers.Add(-1)
	if r.lockedBytes() == 0 {
		unlockedBuffers.Add(-1)
	}
}

// releaseRegion takes r out of the live accounts, checks its canaries and
// wipes it: into the cache if it is intact, the lock policy now in force
// could reuse it, and there is room; unmapped otherwise. It reports a
// broken canary or an OS error.
func releaseRegion(r *region) error {
	retireRegion(r)
	var err error
	// A region the cache has no room for is only verified: free wipes
	// every page that held data, and clearing it first would wipe twice.
	if LockPolicy(lockPolicy.Load()).serves(r) && cacheHasRoom(int(r.pages_len)) {
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

// cacheHasRoom reports whether a region of pages bytes fits in the cache
// now. Without the lock it can be out of date; cacheRegion decides.
func cacheHasRoom(pages int) bool {
	return cachedRegions.Load() < cacheMaxRegions && cache.bytes.Load()+int64(pages) <= cacheMaxBytes
}

// cacheRegion keeps a recycled region if there is room.
func cacheRegion(r *region) bool {
	pages := int(r.pages_len)
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if !cacheHasRoom(pages) {
		return false
	}
	if cache.byPages == nil {
		cache.byPages = make(map[int][]*region)
	}
	cache.byPages[pages] = append(cache.byPages[pages], r)
	cache.bytes.Add(int64(pages))
	cachedRegions.Add(1)
	return true
}

// unmapRegion wipes and unmaps r, taking its locked pages out of the count.
func unmapRegion(r *region) error { return unmapRegions([]*region{r}) }

// unmapRegions is unmapRegion for many regions, in one batch.
func unmapRegions(rs []*region) error {
	for _, r := range rs {
		lockedBytes.Add(-int64(r.lockedBytes()))
	}
	mappedRegions.Add(-int64(len(rs)))
	return freeRegions(rs)
}

// takeCache empties the cache and returns what it held.
func takeCache() []*region {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	var all []*region
	for pages, stack := range cache.byPages {
		all = append(all, stack...)
		delete(cache.byPages, pages)
	}
	cache.bytes.Store(0)
	cachedRegions.Add(-int64(len(all)))
	return all
}

// drainCache unmaps every cached region and reports how many there were.
func drainCache() int {
	all := takeCache()
	unmapRegions(all)
	return len(all)
}
