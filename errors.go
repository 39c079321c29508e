//go:build cgo

package memguard

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors returned by this package. They may be wrapped with detail, so test
// for them with errors.Is.
var (
	// ErrInvalidSize: a size below 1, too large to map, or empty input.
	ErrInvalidSize = errors.New("memguard: invalid size")
	// ErrInvalidArgument: a nil reader or callback, a nil or zero
	// Enclave, Options that do not go together (Compact with
	// NoAccessWhenIdle), a negative WithChunkSize, or a source in
	// read-only memory that a constructor cannot wipe (other than a
	// Buffer's own data).
	ErrInvalidArgument = errors.New("memguard: invalid argument")
	// ErrDestroyed: the Buffer was destroyed, by Destroy, Seal or Purge,
	// or Purge wiped it while the call was using it.
	ErrDestroyed = errors.New("memguard: buffer has been destroyed")
	// ErrImmutable: the Buffer is frozen (read-only); Melt it first.
	ErrImmutable = errors.New("memguard: buffer is frozen")
	// ErrCanaryCorrupt: memory next to the secret was overwritten, by an
	// overflow or underflow in this process. Treat it as an attack or a
	// memory-safety bug: SafePanic is a reasonable response.
	ErrCanaryCorrupt = errors.New("memguard: canary corrupted")
	// ErrDecryption: an Enclave failed to decrypt, because its ciphertext
	// was altered or its key was lost to Purge.
	ErrDecryption = errors.New("memguard: decryption failed")
	// ErrCipher: Go's cryptography refused the enclave cipher, as
	// GODEBUG=fips140=only makes it refuse algorithms that FIPS 140-3 does
	// not approve; the error wraps Go's too. In FIPS 140-3 mode enclaves
	// use approved algorithms only (see Enclave), so it reports a Go
	// release that refuses those as well. Open reports it with
	// ErrDecryption.
	ErrCipher = errors.New("memguard: enclave cipher refused")
	// ErrCofferDestroyed: the Coffer was destroyed, by Destroy or Purge.
	ErrCofferDestroyed = errors.New("memguard: coffer has been destroyed")
	// ErrMemoryLock: the kernel refused to lock memory. The error is a
	// *LockError, which says how to raise the limit.
	ErrMemoryLock = errors.New("memguard: cannot lock memory")
	// ErrOutOfMemory: the kernel refused a mapping, for lack of memory or
	// because vm.max_map_count was reached; or the library already holds
	// as many regions as it may without leaving the rest of the process
	// (the Go runtime among it) less than a sixteenth of vm.max_map_count.
	ErrOutOfMemory = errors.New("memguard: out of memory")
	// ErrProtection: the kernel refused to change a mapping's protection or
	// advice, or to unmap it.
	ErrProtection = errors.New("memguard: cannot protect memory")
	// ErrRandom: the kernel's random source failed.
	ErrRandom = errors.New("memguard: random source failed")
)

// LockError reports an mlock refusal. errors.Is(err, ErrMemoryLock) holds,
// and errors.Is(err, syscall.ENOMEM) (or EPERM) matches the kernel's reason.
type LockError struct {
	Size      int    // secret bytes asked for
	Requested int    // bytes of pages the lock was asked for
	Limit     uint64 // soft RLIMIT_MEMLOCK at the time; MemlockUnlimited if none
	Err       error  // the errno, if any
}

func (e *LockError) Error() string {
	limit := "unlimited"
	if e.Limit != MemlockUnlimited {
		limit = fmt.Sprintf("%d bytes", e.Limit)
	}
	return fmt.Sprintf("memguard: cannot lock %d bytes of memory for a %d-byte secret (%v); "+
		"RLIMIT_MEMLOCK is %s. Raise it with `ulimit -l`, systemd LimitMEMLOCK=, "+
		"`docker run --ulimit memlock=...`, or grant CAP_IPC_LOCK; "+
		"or allow unlocked memory with SetLockPolicy(LockBestEffort)",
		e.Requested, e.Size, e.Err, limit)
}

// Is reports whether target is ErrMemoryLock.
func (e *LockError) Is(target error) bool { return target == ErrMemoryLock }

// Unwrap returns the kernel's errno.
func (e *LockError) Unwrap() error { return e.Err }

// osError is a kernel refusal other than mlock: one of the package's errors
// (kind) with the operation, the size and the errno.
type osError struct {
	kind error
	op   string
	size int
	err  error
}

func (e *osError) Error() string {
	msg := fmt.Sprintf("%v: cannot %s %d bytes", e.kind, e.op, e.size)
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	if e.kind == ErrOutOfMemory {
		msg += " (check free memory, RLIMIT_AS and vm.max_map_count)"
	}
	return msg
}

func (e *osError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}

// mapCountError is the library refusing a mapping so that the rest of the
// process keeps some of vm.max_map_count. It matches syscall.ENOMEM, which
// is what mmap returns at the limit itself.
type mapCountError struct {
	regions, mapCount int64
}

func (e *mapCountError) Error() string {
	return fmt.Sprintf("%d regions already mapped, the most that leave a sixteenth of vm.max_map_count (%d) to the rest of the process",
		e.regions, e.mapCount)
}

func (e *mapCountError) Unwrap() error { return syscall.ENOMEM }

func sizeError(size int) error {
	return fmt.Errorf("%w: %d bytes", ErrInvalidSize, size)
}

// secretMemoryError is the kernel's reason for refusing memfd_secret, with
// what it means here. It unwraps to the errno.
type secretMemoryError struct{ errno error }

func (e *secretMemoryError) Error() string {
	why := "this system has no memfd_secret"
	switch e.errno {
	case syscall.ENOSYS:
		why = "memfd_secret is not in this kernel (Linux 5.14 or later), or is disabled (secretmem.enable=0 on the kernel command line)"
	case syscall.EPERM:
		why = "a seccomp filter or security module forbids memfd_secret"
	case syscall.EINVAL, syscall.EOPNOTSUPP:
		why = "this kernel or architecture does not support memfd_secret"
	case syscall.EMFILE, syscall.ENFILE:
		why = "no file descriptor is left for memfd_secret (RLIMIT_NOFILE)"
	default:
		if e.errno != nil {
			why = "the kernel refused to size or map the secret memory"
		}
	}
	if e.errno == nil {
		return why
	}
	return fmt.Sprintf("%v: %s; AllowFallback() accepts ordinary locked pages instead", e.errno, why)
}

func (e *secretMemoryError) Unwrap() error { return e.errno }
