//go:build cgo

// Package memguard keeps secrets (keys, passwords, tokens) in memory that the
// Go runtime never owns.
//
// A Buffer holds a secret in a region mapped by a small C core: an
// inaccessible guard page on each side, random canaries next to the data
// (checked on every access), pages locked in RAM, left out of core dumps and
// zeroed in forked children. Secrets are read and written only inside
// WithData and WithDataMut callbacks, and are wiped when the Buffer is
// destroyed.
//
// What it protects against: secrets paged to swap, written to core dumps,
// inherited by forked children, copied around by the garbage collector, or
// left behind in freed memory; linear overflows and underflows into or out
// of a secret; stray writes to frozen secrets. What it cannot protect
// against: an attacker who can run code in the process, read its memory
// through ptrace or /proc/PID/mem as the same user or root, or a kernel
// compromise; and copies that your own code makes of a secret.
//
// No function in this package panics on bad input or an operating-system
// failure: each returns an error to test with errors.Is. SafePanic is the
// one deliberate panic.
package memguard

import (
	"math"
	"syscall"
)

// Statistics is a snapshot of the package's state, from Stats.
type Statistics struct {
	LiveBuffers     int    // Buffers not yet destroyed
	LockedBytes     int    // bytes of pages currently locked, cached regions included
	UnlockedBuffers int    // live Buffers whose pages are not locked
	CachedRegions   int    // wiped regions kept mapped (and locked) for reuse
	CanaryFailures  int    // Buffers found with a broken canary, ever
	LockFailures    int    // allocations the kernel refused to lock, ever
	MemlockLimit    uint64 // soft RLIMIT_MEMLOCK in bytes; MaxUint64 is unlimited
}

// Stats returns the current Statistics. The counters are read one by one,
// so a snapshot taken while other goroutines allocate may be slightly
// inconsistent; each counter is exact on its own.
func Stats() Statistics {
	return Statistics{
		LiveBuffers:     int(liveBuffers.Load()),
		LockedBytes:     int(lockedBytes.Load()),
		UnlockedBuffers: int(unlockedBuffers.Load()),
		CachedRegions:   int(cachedRegions.Load()),
		CanaryFailures:  int(canaryFailures.Load()),
		LockFailures:    int(lockFailures.Load()),
		MemlockLimit:    memlockLimit(),
	}
}

// MemlockUnlimited is Statistics.MemlockLimit when there is no limit.
const MemlockUnlimited = math.MaxUint64

// WipeBytes zeroes b in a way the compiler cannot remove.
func WipeBytes(b []byte) { wipeBytes(b) }

// ScrambleBytes fills b with bytes from the kernel's CSPRNG.
func ScrambleBytes(b []byte) error { return randomBytes(b) }

// DisableCoreDumps sets the soft RLIMIT_CORE to zero, so that a crash
// writes no core dump at all. On Linux protected pages are already left out
// of core dumps; this also covers the rest of the process, where copies
// your own code made may live. The hard limit is left as it is, so the
// application can raise the soft limit again. Importing the package changes
// no process setting; only this call does.
func DisableCoreDumps() error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err != nil {
		return &osError{kind: ErrProtection, op: "read RLIMIT_CORE for", err: err}
	}
	rl.Cur = 0
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &rl); err != nil {
		return &osError{kind: ErrProtection, op: "set RLIMIT_CORE for", err: err}
	}
	return nil
}
