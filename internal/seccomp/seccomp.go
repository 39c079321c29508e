//go:build linux && (amd64 || arm64)

// Package seccomp makes one system call fail on demand, for every thread
// of the process and for good: tests run it in a child process.
package seccomp

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Refuse makes system call nr fail with errno; if arg0 is not nil, only
// where its first argument equals *arg0.
func Refuse(nr uintptr, arg0 *uint64, errno syscall.Errno) error {
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		args = 16 // offsetof(struct seccomp_data, args); little endian
	)
	allow := unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW}
	refuse := unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(errno)}
	filter := []unix.SockFilter{{Code: ld, K: 0}} // the call's number
	if arg0 == nil {
		filter = append(filter, unix.SockFilter{Code: jeq, K: uint32(nr), Jf: 1}, refuse, allow)
	} else {
		filter = append(filter,
			unix.SockFilter{Code: jeq, K: uint32(nr), Jf: 5},
			unix.SockFilter{Code: ld, K: args},
			unix.SockFilter{Code: jeq, K: uint32(*arg0), Jf: 3},
			unix.SockFilter{Code: ld, K: args + 4},
			unix.SockFilter{Code: jeq, K: uint32(*arg0 >> 32), Jf: 1},
			refuse, allow)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return e
	}
	return nil
}
