//go:build cgo && linux

package memguard

// On Linux the core (package csrc) uses getrandom(2), explicit_bzero(3) and
// mlock2(MLOCK_ONFAULT) (plain mlock where that is refused), and advises the
// data pages MADV_DONTDUMP (left out of core dumps) and MADV_WIPEONFORK
// (forked children see zeros), both checked. Secret memory (mapSecret) comes
// from memfd_secret(2) instead. This is the platform the project's CI tests.

/*
#cgo linux CFLAGS: -D_GNU_SOURCE
*/
import "C"

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mprotect is a raw system call, which the Go scheduler does not see: see
// region.protect for why.
func mprotect(addr unsafe.Pointer, n uintptr, prot int) error {
	_, _, errno := unix.RawSyscall(unix.SYS_MPROTECT, uintptr(addr), n, uintptr(prot))
	if errno != 0 {
		return errno
	}
	return nil
}
