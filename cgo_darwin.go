//go:build cgo && darwin

package memguard

// On macOS the core (package csrc) uses getentropy(2), a volatile memset and
// plain mlock(2). There is no MADV_DONTDUMP or MADV_WIPEONFORK: secrets can
// reach a core dump (DisableCoreDumps prevents that) and a forked child
// inherits a copy. This port is written carefully but not built by this
// project's CI, which has no macOS toolchain; `make test-c` runs the core's
// tests with these branches compiled in against the Linux libc.

/*
#cgo darwin CFLAGS: -D_DARWIN_C_SOURCE
*/
import "C"

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mprotect goes through libc, as system calls must on macOS.
func mprotect(addr unsafe.Pointer, n uintptr, prot int) error {
	return unix.Mprotect(unsafe.Slice((*byte)(addr), n), prot)
}

// canLockWithoutLimit is false: macOS has no capability that lifts
// RLIMIT_MEMLOCK.
func canLockWithoutLimit() bool { return false }
