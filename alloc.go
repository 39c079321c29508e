//go:build cgo

package memguard

import (
	"errors"
	"sync/atomic"
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
	canaryFailures  atomic.Int64
	lockFailures    atomic.Int64
)

// allocRegion maps a region under the lock policy and accounts for it.
func allocRegion(size int) (*region, error) {
	policy := LockPolicy(lockPolicy.Load())
	r, err := newRegion(size, policy != LockDisabled)
	if errors.Is(err, ErrMemoryLock) {
		lockFailures.Add(1)
		if policy == LockBestEffort {
			r, err = newRegion(size, false)
		}
	}
	if err != nil {
		return nil, err
	}
	liveBuffers.Add(1)
	if n := r.lockedBytes(); n > 0 {
		lockedBytes.Add(int64(n))
	} else {
		unlockedBuffers.Add(1)
	}
	return r, nil
}

// releaseRegion wipes and unmaps r and takes it out of the accounts.
func releaseRegion(r *region) error {
	liveBuffers.Add(-1)
	if n := r.lockedBytes(); n > 0 {
		lockedBytes.Add(-int64(n))
	} else {
		unlockedBuffers.Add(-1)
	}
	return r.free()
}
