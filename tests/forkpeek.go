//go:build cgo && linux

package tests

/*
#include <errno.h>
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
*/
import "C"

import (
	"fmt"
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

// cBytes returns n bytes of C memory holding b, for a control case.
func cBytes(b []byte) (unsafe.Pointer, func()) {
	p := C.CBytes(b)
	return p, func() { C.free(p) }
}
