//go:build cgo

package memguard

import (
	"fmt"
	"sync/atomic"
)

// Option chooses how one secret is protected, beyond what every Buffer
// gets. Options are built only by the functions of this package
// (NoAccessWhenIdle, SecretMemory, AllowFallback, Compact) and passed to a
// constructor, to (*Enclave).Open or WithData, or to SetDefaultOptions. A
// nil Option is ignored; a value of another type (a caller's type that
// embeds an Option) is ErrInvalidArgument.
type Option interface {
	// with returns o with the option added. Unexported, so that only
	// this package's types are Options.
	with(o options) options
}

// optionFlag is an Option that adds its flags to a set.
type optionFlag options

func (f optionFlag) with(o options) options { return o | options(f) }

// options is a set of Options. The zero set is an ordinary Buffer.
type options uint8

const (
	optNoAccess options = 1 << iota
	optSecret
	optFallback
	optCompact
)

// NoAccessWhenIdle makes the data pages inaccessible (PROT_NONE) except
// while WithData, WithDataMut, EqualTo, Verify, Seal or a write through the
// API (Scramble, Wipe, a constructor's fill) runs on the Buffer. Concurrent
// readers share one window: the first one in makes the pages readable, the
// last one out makes them inaccessible again. A slice kept past its
// callback then faults when read, instead of seeing the secret. Each
// access costs two protection changes.
func NoAccessWhenIdle() Option { return optionFlag(optNoAccess) }

// SecretMemory takes the data pages from memfd_secret(2) (Linux 5.14 and
// later, on by default from 6.5). Those pages are out of the kernel's
// direct map: /proc/PID/mem, process_vm_readv and ptrace cannot read them,
// even as root, and a forked child has no mapping of them at all. The
// kernel locks them itself and charges them to RLIMIT_MEMLOCK whatever the
// lock policy. Where memfd_secret is missing or disabled (and always on
// macOS) the allocation fails with an error matching errors.ErrUnsupported
// that says why, unless AllowFallback is given too.
func SecretMemory() Option { return optionFlag(optSecret) }

// AllowFallback lets SecretMemory settle for ordinary pages, protected as a
// Buffer without options is, where secret memory is unavailable, or where
// the kernel refuses it for RLIMIT_MEMLOCK under LockBestEffort or
// LockDisabled. Each fallback is counted in Stats().SecretMemoryFallbacks.
// Without SecretMemory it changes nothing.
func AllowFallback() Option { return optionFlag(optFallback) }

// Compact packs a secret of up to 256 bytes into a slot of a shared,
// locked, guard-paged chunk of the compact arena, instead of a region of
// its own: a 32-byte secret then costs 48 bytes of locked memory instead
// of a page, and a million of them take a few hundred mappings instead of
// two million. Every Buffer method behaves as without it.
//
// What it keeps: the memory is locked (as the lock policy says), left out
// of core dumps and zeroed in forked children, the secret is wiped on
// Destroy and Purge, and a random canary sits between each slot and the
// next, checked next to the data on every access and in full by Verify,
// Seal and Destroy: an overflow from one secret into its neighbour is
// ErrCanaryCorrupt on the next access to either. With SecretMemory the
// arena's chunks are memfd_secret memory (AllowFallback applies as for
// regions).
//
// What it gives up: there is no guard page between one secret and the
// next, only the canary, so an overflow is detected, not stopped, and an
// over-read of a neighbour is not seen at all. Freeze is enforced by this
// API alone: WithDataMut, Scramble and Wipe give ErrImmutable, but the
// page stays writable in hardware, because the secrets sharing it may be
// mutable, so a stray write through a kept slice is not a fault. For the
// same reason it cannot go with NoAccessWhenIdle (ErrInvalidArgument).
//
// Given to a constructor or Open, a size above 256 bytes is
// ErrInvalidSize. Set with SetDefaultOptions, it applies to secrets of up
// to 256 bytes, and larger ones get regions of their own, as without it.
func Compact() Option { return optionFlag(optCompact) }

// defaultOptions are the options of calls given none; SetDefaultOptions
// sets them. Only valid sets are stored.
var defaultOptions atomic.Uint32

// SetDefaultOptions sets the options of every later constructor call and
// Open that is given none of its own (options given to a call replace the
// defaults for that call; nil Options do not count), and of the key pages
// of Coffers made later, the process key that seals enclaves among them
// (SecretMemory and AllowFallback only). The process key is made at the
// first seal and again after Purge: set the defaults before sealing
// anything. Buffers and Coffers that exist keep their memory. With no
// options it restores ordinary Buffers. An invalid combination returns the
// error a constructor would and leaves the defaults as they were. It is
// safe to call concurrently with everything else.
func SetDefaultOptions(opts ...Option) error {
	o, err := collect(opts)
	if err != nil {
		return err
	}
	if _, err := o.storage(); err != nil {
		return err
	}
	defaultOptions.Store(uint32(o))
	return nil
}

// collect folds opts into a set, skipping nil Options. An Option that is
// not one of this package's (a caller's type that embeds one, even a nil
// one) is ErrInvalidArgument.
func collect(opts []Option) (options, error) {
	var o options
	for _, opt := range opts {
		switch opt := opt.(type) {
		case nil:
		case optionFlag:
			o = opt.with(o)
		default:
			return 0, fmt.Errorf("%w: %T is not an Option of this package", ErrInvalidArgument, opt)
		}
	}
	return o, nil
}

// storageFor is the storage for a call given opts: the call's own options
// if it has any that are not nil, the defaults otherwise. Compact from the
// defaults gives way to a region for a secret no slot holds; given to the
// call, it does not (storage.sized).
func storageFor(opts []Option) (storage, error) {
	o, err := collect(opts)
	if err != nil {
		return storage{}, err
	}
	if o == 0 {
		st, err := options(defaultOptions.Load()).storage()
		if st.compact != notCompact {
			st.compact = compactWhereFits // defaults are compact only where a slot fits
		}
		return st, err
	}
	return o.storage()
}

// storage checks a set of options and turns it into the policy's
// decision. Nothing is allocated before this succeeds.
func (o options) storage() (storage, error) {
	if o&optCompact != 0 {
		if o&optNoAccess != 0 {
			return storage{}, fmt.Errorf("%w: Compact with NoAccessWhenIdle: compact secrets share pages, which cannot be hidden one secret at a time", ErrInvalidArgument)
		}
	}
	st := storage{class: classOrdinary, noAccess: o&optNoAccess != 0}
	if o&optCompact != 0 {
		st.compact = compactAlways
	}
	if o&optSecret != 0 {
		st.class = classSecret
		st.fallback = o&optFallback != 0
	}
	return st, nil
}

// keyStorage is the storage of a Coffer's key page: the defaults' choice of
// memory, nothing else. Not NoAccessWhenIdle: the page is read by every
// seal, Open and WithKey and by the re-key goroutine, each of which would
// pay two protection changes, while the key is only ever in it as two
// shares re-randomised in the background. Not Compact: the page holds 64
// key slots beside the shares, far more than a compact slot.
func keyStorage() storage {
	o := options(defaultOptions.Load()) & (optSecret | optFallback)
	st, _ := o.storage() // a subset of a valid set is valid
	return st
}
