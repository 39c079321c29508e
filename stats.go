//go:build cgo

package memguard

import "math"

// Statistics is a snapshot of the package's state, from Stats.
type Statistics struct {
	LiveBuffers int // Buffers not yet destroyed, Coffers' and compact ones included
	// LockedBytes is the bytes of pages locked now: regions, cached
	// regions, and the compact arena's chunks whole (free slots and the
	// one empty chunk each arena shard keeps for reuse included).
	LockedBytes     int
	UnlockedBuffers int // live Buffers whose pages are not locked
	CachedRegions   int // wiped regions kept mapped (and locked) for reuse
	CanaryFailures  int // Buffers found with a broken canary, ever
	LockFailures    int // allocations the kernel refused to lock, ever
	// Reclaimed counts Buffers and Coffers that became unreachable without
	// Destroy and were wiped and freed by the garbage collector, ever. A
	// growing count is a leak in the application: Destroy frees at once.
	Reclaimed     int
	RekeyFailures int // background re-keys that failed and were retried, ever
	// SecretMemoryBuffers counts live Buffers (Coffers' included) whose
	// data pages are memfd_secret memory (SecretMemory).
	SecretMemoryBuffers int
	// SecretMemoryFallbacks counts SecretMemory allocations that got
	// ordinary pages instead (AllowFallback) and succeeded, ever: one per
	// Buffer, and one for each of the scratch Buffers that
	// NewBufferFromEntireReader grows through.
	SecretMemoryFallbacks int
	// CompactBuffers counts live Buffers held in slots of the compact
	// arena (Compact), counted in LiveBuffers too.
	CompactBuffers int
	MemlockLimit   uint64 // soft RLIMIT_MEMLOCK in bytes; MemlockUnlimited if none
	// MemlockEnforced is false when the process may lock memory beyond
	// MemlockLimit: it holds CAP_IPC_LOCK (root usually does), which the
	// kernel checks before the limit.
	MemlockEnforced bool
	// MemlockHeadroom is how much more this package could lock if nothing
	// else in the process locks memory: MemlockLimit minus LockedBytes, or
	// MemlockUnlimited when there is no limit or it is not enforced.
	MemlockHeadroom uint64
}

// MemlockUnlimited is Statistics.MemlockLimit when there is no limit.
const MemlockUnlimited = math.MaxUint64

// Stats returns the current Statistics. The counters are read one by one,
// so a snapshot taken while other goroutines allocate may be slightly
// inconsistent; each counter is exact on its own.
func Stats() Statistics {
	s := Statistics{
		LiveBuffers:           int(liveBuffers.Load()),
		LockedBytes:           int(lockedBytes.Load()) + compactArenas.usage().locked,
		UnlockedBuffers:       int(unlockedBuffers.Load()),
		CachedRegions:         int(cachedRegions.Load()),
		CanaryFailures:        int(canaryFailures.Load()),
		LockFailures:          int(lockFailures.Load()),
		Reclaimed:             int(reclaimed.Load()),
		RekeyFailures:         int(rekeyFailures.Load()),
		SecretMemoryBuffers:   int(secretBuffers.Load()),
		SecretMemoryFallbacks: int(secretFallbacks.Load()),
		CompactBuffers:        int(compactBuffers.Load()),
		MemlockLimit:          memlockLimit(),
		MemlockEnforced:       !canLockWithoutLimit(),
	}
	switch locked := uint64(s.LockedBytes); {
	case s.MemlockLimit == MemlockUnlimited || !s.MemlockEnforced:
		s.MemlockHeadroom = MemlockUnlimited
	case locked < s.MemlockLimit:
		s.MemlockHeadroom = s.MemlockLimit - locked
	}
	return s
}
