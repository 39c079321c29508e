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

// canLockWithoutLimit reports whether the process holds CAP_IPC_LOCK in its
// effective set, which lets it lock memory beyond RLIMIT_MEMLOCK.
func canLockWithoutLimit() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return false
	}
	return data[unix.CAP_IPC_LOCK/32].Effective&(1<<(unix.CAP_IPC_LOCK%32)) != 0
}
