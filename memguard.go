//go:build cgo

// Package memguard keeps secrets (keys, passwords, tokens) in memory that the
// Go runtime never owns.
//
// A Buffer holds a secret in a region mapped by a small C core: an
// inaccessible guard page on each side, random canaries next to the data
// (checked on every access), pages locked in RAM, left out of core dumps and
// zeroed in forked children. Secrets are read and written only inside
// WithData and WithDataMut callbacks, and are wiped when the Buffer is
// destroyed. An Enclave holds a secret encrypted in ordinary memory, a
// Coffer a key that is re-keyed in the background, a Stream a sequence of
// secret bytes sealed in chunks.
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
// # Guarantees
//
//   - No secret byte passes through the Go heap on the library's own
//     paths: constructors, readers and Open write straight into protected
//     memory. Key material that the enclave cipher copies into the heap is
//     wiped after every call.
//   - No function panics on bad input or an operating-system failure: each
//     returns an error to test with errors.Is. SafePanic is the one
//     deliberate panic.
//   - Everything is safe for concurrent use, and Purge never waits for a
//     callback: a call whose secret Purge wiped reports an error, never
//     success with wiped data.
//   - Importing the package changes nothing in the process: no signal
//     handler, no resource limit, no HTTP handler (it imports neither
//     net/http nor expvar). The expvarstats package and the promstats
//     module publish Stats when asked.
//
// # Status
//
// Pre-1.0: the API may change before v1.0.0, and CHANGELOG.md records
// every change. Linux on amd64 is built and tested; linux/arm64 and macOS
// are compiled and linked but not run. macOS has no MADV_DONTDUMP,
// MADV_WIPEONFORK or memfd_secret, so there protected pages can reach a
// core dump (DisableCoreDumps keeps them out) and a forked child.
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
// core dump, so there this call is what keeps secrets out of one. The hard
// limit is left as it is, so the application can raise the soft limit
// again. Importing the package changes no process setting; only this call
// does.
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
