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
// through ptrace or /proc/PID/mem as the same user or root (unless the
// secret is in SecretMemory), or a kernel compromise; and copies that your
// own code makes of a secret.
//
// Options choose more protection per secret, or for every secret with
// SetDefaultOptions: NoAccessWhenIdle (inaccessible except while a call
// uses the data), SecretMemory (memfd_secret pages, out of the kernel's
// direct map) and Compact (secrets of up to 256 bytes in slots of shared
// locked chunks, for processes that hold many).
//
// No function in this package panics on bad input or an operating-system
// failure: each returns an error to test with errors.Is. SafePanic is the
// one deliberate panic.
package memguard

import "syscall"

// WipeBytes zeroes b in a way the compiler cannot remove.
func WipeBytes(b []byte) { wipeBytes(b) }

// ScrambleBytes fills b with bytes from the kernel's CSPRNG.
func ScrambleBytes(b []byte) error { return randomBytes(b) }

// DisableCoreDumps sets the soft RLIMIT_CORE to zero, so that a crash
// writes no core dump at all. On Linux protected pages are already left out
// of core dumps; this also covers the rest of the process, where copies
// your own code made may live. macOS has no way to leave pages out of a
// core dump, so there this call is what keeps secrets out of one. The hard limit is left as it is, so the
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
