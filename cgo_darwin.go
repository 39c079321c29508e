//go:build cgo && darwin

package memguard

// On macOS the core (package csrc) uses getentropy(2), memset_s and plain
// mlock(2). There is no MADV_DONTDUMP or MADV_WIPEONFORK: secrets can reach
// a core dump (DisableCoreDumps prevents that) and a forked child inherits
// a copy. Pages are 16 KiB on Apple silicon. `make cross` compiles and
// links this port for amd64 and arm64 with zig; nothing runs it here.

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
