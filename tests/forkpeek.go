//go:build cgo && linux

package tests

/*
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

// Forks; the child writes n bytes at p to a pipe and exits at once, using
// only async-signal-safe calls (no Go runs in it). The parent reads them
// into out. Returns the bytes read, or -1.
static long fork_peek(const void *p, size_t n, void *out) {
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		ssize_t w = write(fds[1], p, n);
		_exit(w == (ssize_t)n ? 0 : 1);
	}
	close(fds[1]);
	while (got < n) {
		ssize_t r = read(fds[0], (char *)out + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return (long)got;
}

// Forks; the child reads the byte at p and exits at once, 0 if it was
// zero, 1 if not. The child restores the default action of SIGSEGV and
// SIGBUS first, so that a fault kills it instead of running the Go
// runtime's handler, inherited but with no Go runtime behind it. Returns the signal that ended the child, 0 if it exited
// with status 0, -1 if it could not be forked, or -2 if it exited with 1.
static int fork_touch(const volatile unsigned char *p) {
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		_exit(*p == 0 ? 0 : 1);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(status))
		return WTERMSIG(status);
	return WEXITSTATUS(status) == 0 ? 0 : -2;
}
*/
import "C"

import (
	"fmt"
	"syscall"
	"unsafe"
)

// forkPeek returns what a forked child sees at p..p+n.
func forkPeek(p unsafe.Pointer, n int) ([]byte, error) {
	out := C.malloc(C.size_t(n))
	defer C.free(out)
	got := C.fork_peek(p, C.size_t(n), out)
	if got != C.long(n) {
		return nil, fmt.Errorf("fork_peek read %d of %d bytes", got, n)
	}
	return C.GoBytes(out, C.int(n)), nil
}

// forkTouch reports how a forked child that reads the byte at p ends: the
// signal that killed it, or 0 if it read a zero and exited.
func forkTouch(p unsafe.Pointer) (syscall.Signal, error) {
	switch r := C.fork_touch((*C.uchar)(p)); r {
	case -1:
		return 0, fmt.Errorf("fork failed")
	case -2:
		return 0, fmt.Errorf("the child read a byte that is not zero")
	default:
		return syscall.Signal(r), nil
	}
}

// cBytes returns n bytes of C memory holding b, for a control case.
func cBytes(b []byte) (unsafe.Pointer, func()) {
	p := C.CBytes(b)
	return p, func() { C.free(p) }
}
