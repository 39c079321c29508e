//go:build cgo

package memguard

// The core is compiled by package csrc; this file calls it.

/*
#cgo CFLAGS: -std=c11
#include "csrc/memguard.h"
*/
import "C"

import (
	"errors"
	"math"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	_ "github.com/securememory/memguard/csrc" // links the C core
)

// region is one guarded, locked allocation owned by the C core. Its fields
// live in C memory; Go reads them without a cgo call.
type region C.mg_region

// canaryLen is the length of the leading canary in bytes.
const canaryLen = C.MG_CANARY_LEN

// mapFlags say how a region's data pages are mapped.
type mapFlags C.uint

const (
	mapLock   mapFlags = C.MG_MAP_LOCK   // locked
	mapSecret mapFlags = C.MG_MAP_SECRET // memfd_secret memory, always locked
)

// newRegion maps a region for size bytes as flags say.
func newRegion(size int, flags mapFlags) (*region, error) {
	var r *C.mg_region
	st, errno := C.mg_region_new(C.size_t(size), C.uint(flags), &r)
	if st != C.MG_OK {
		return nil, statusError(st, errno, size)
	}
	return (*region)(r), nil
}

func (r *region) c() *C.mg_region { return (*C.mg_region)(r) }

// pageSize is the size of a memory page, which the C core also uses.
var pageSize = uint64(os.Getpagesize())

// regionPagesFor reports the bytes of data pages a region of size needs, or
// 0 if size is out of range. It is mg_pages_for without a cgo call, which
// would cost as much as the rest of a cache lookup.
func regionPagesFor(size int) int { return regionPagesForPage(size, pageSize) }

// regionPagesForPage is regionPagesFor with pages of page bytes: the secret
// and its tail canary rounded up to MG_ALIGN, plus the leading canary, in
// whole pages. It mirrors the core's mg_pages_for_page;
// TestRegionPagesForPageMatchesC holds the two equal at 4, 16 and 64 KiB.
func regionPagesForPage(size int, page uint64) int {
	if size < 1 || page == 0 {
		return 0
	}
	const align = C.MG_ALIGN
	need := (uint64(size)+align-1)&^(align-1) + canaryLen
	pages := (need + page - 1) / page * page
	if pages > math.MaxInt {
		return 0
	}
	return int(pages)
}

// corePagesForPage is the core's own mg_pages_for_page, for the test that
// holds regionPagesForPage to it: test files cannot call C.
func corePagesForPage(size int, page uint64) uint64 {
	return uint64(C.mg_pages_for_page(C.size_t(size), C.size_t(page)))
}

func (r *region) place(size int) error {
	st, errno := C.mg_region_place(r.c(), C.size_t(size))
	return statusError(st, errno, size)
}

// protection is the hardware protection of a region's data pages.
type protection C.int

const (
	protRW   protection = C.MG_PROT_RW
	protRO   protection = C.MG_PROT_RO
	protNone protection = C.MG_PROT_NONE
)

// protFlags are the mprotect flags of each protection.
var protFlags = [...]int{
	protRW:   unix.PROT_READ | unix.PROT_WRITE,
	protRO:   unix.PROT_READ,
	protNone: unix.PROT_NONE,
}

// protect sets the data pages' hardware protection, if it differs, and
// records it for the core, which writes only to pages recorded writable.
//
// The C core owns the pages, but protection changes are made here, as
// a raw system call (cgo_linux.go), because the Go scheduler treats every
// cgo call as a system call: a goroutine that spends most of its time in
// them, such as one opening and destroying enclaves in a loop, has its P
// retaken by sysmon; after each retake sysmon polls at a short interval
// for a while, and each wakeup makes the next mprotect interrupt the other
// CPUs for a TLB shootdown. A raw system call keeps the P, so none of this
// happens, and it is the cheapest of the three ways to make the call
// (docs/PERFORMANCE.md). The runtime makes its own mmap and munmap calls
// raw too: like them, mprotect does no I/O, so keeping the P through it
// costs other goroutines little.
func (r *region) protect(p protection) error {
	if r.protection() == p {
		return nil
	}
	if err := protectPages(unsafe.Pointer(r.pages), uintptr(r.pages_len), protFlags[p]); err != nil {
		return &osError{kind: ErrProtection, op: "protect", size: int(r.size), err: err}
	}
	r.prot = C.int(p)
	return nil
}

func (r *region) protection() protection { return protection(r.prot) }

// protectPages is mprotect; a variable so that tests can make the kernel
// refuse.
var protectPages = mprotect

// verify runs the full canary and padding check.
func (r *region) verify() error {
	st, errno := C.mg_region_verify(r.c())
	return statusError(st, errno, int(r.size))
}

// wipeData makes the data writable and zeroes it, leaving the canaries.
func (r *region) wipeData() error {
	if err := r.protect(protRW); err != nil {
		return err
	}
	st, errno := C.mg_region_wipe(r.c())
	return statusError(st, errno, int(r.size))
}

// recycle verifies the region and, if it is intact, clears its data and
// canaries for reuse, leaving it writable.
func (r *region) recycle() error {
	if err := r.protect(protRW); err != nil {
		return err
	}
	st, errno := C.mg_region_recycle(r.c())
	return statusError(st, errno, int(r.size))
}

// freeRegions wipes and unmaps many regions at once, one munmap per run of
// adjacent mappings; none of them may be used afterwards.
func freeRegions(rs []*region) error {
	if len(rs) == 0 {
		return nil
	}
	// The core wipes only writable pages; the others are unmapped all the
	// same, and the first refusal is reported.
	total := 0
	var perr error
	for _, r := range rs {
		total += int(r.size)
		if err := r.protect(protRW); perr == nil {
			perr = err
		}
	}
	// *region and *C.mg_region are the same pointer; the slice holds only
	// C pointers, so cgo allows passing its backing array.
	st, errno := C.mg_regions_free((**C.mg_region)(unsafe.Pointer(&rs[0])), C.size_t(len(rs)))
	if st == C.MG_EUNMAP || perr == nil {
		return statusError(st, errno, total)
	}
	return perr
}

// bytes is the secret, as a slice over C memory.
func (r *region) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(r.data)), int(r.size))
}

// leadCanary is the canary stored right before the data.
func (r *region) leadCanary() *[canaryLen]byte {
	return (*[canaryLen]byte)(unsafe.Add(unsafe.Pointer(r.data), -canaryLen))
}

// tailCanary is the canary padding the data to 16 bytes, possibly empty.
func (r *region) tailCanary() []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(r.data), int(r.size))), int(r.tail_len))
}

// expectedCanary is the region's canary value, kept in its C metadata.
func (r *region) expectedCanary() *[canaryLen]byte {
	return (*[canaryLen]byte)(unsafe.Pointer(&r.canary))
}

func (r *region) lockedBytes() int {
	if r.locked == 0 {
		return 0
	}
	return int(r.pages_len)
}

// wipeBytes zeroes b. It is never inlined, so the compiler sees only a
// slice handed in by a caller and cannot prove the stores dead, as it could
// for a clear of a caller's local array that is never read again. Go's own
// crypto wipes with clear too (its GCM clears unauthenticated plaintext
// that way). A cgo call to explicit_bzero would add a cgo call's overhead
// to every wipe, and Open wipes twice.
//
//go:noinline
func wipeBytes(b []byte) {
	clear(b)
}

// equalBytes compares a and b in time that depends only on their lengths.
func equalBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	return C.mg_equal(unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), C.size_t(len(a))) == 1
}

// randomBytes fills b from the kernel's CSPRNG.
func randomBytes(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	st, errno := C.mg_random(unsafe.Pointer(&b[0]), C.size_t(len(b)))
	return statusError(st, errno, len(b))
}

// memlockLimit is the soft RLIMIT_MEMLOCK in bytes (MaxUint64: unlimited).
func memlockLimit() uint64 {
	var cur C.ulonglong
	if C.mg_memlock_limit(&cur) != C.MG_OK {
		return 0
	}
	return uint64(cur)
}

// statusError turns a C status, and the errno cgo read after the call,
// into the package's error for it.
func statusError(st C.int, err error, size int) error {
	switch st {
	case C.MG_OK:
		return nil
	case C.MG_EINVAL:
		return sizeError(size)
	case C.MG_ENOMEM:
		return &osError{kind: ErrOutOfMemory, op: "map", size: size, err: err}
	case C.MG_ELOCK:
		return &LockError{Size: size, Requested: regionPagesFor(size), Limit: memlockLimit(), Err: err}
	case C.MG_EPROTECT:
		return &osError{kind: ErrProtection, op: "protect", size: size, err: err}
	case C.MG_ERANDOM:
		return &osError{kind: ErrRandom, op: "read random bytes for", size: size, err: err}
	case C.MG_ECANARY:
		return ErrCanaryCorrupt
	case C.MG_EUNSUPPORTED:
		return &osError{kind: errors.ErrUnsupported, op: "map secret memory (memfd_secret) for", size: size, err: &secretMemoryError{err}}
	default: // C.MG_EUNMAP
		return &osError{kind: ErrProtection, op: "unmap", size: size, err: err}
	}
}
