//go:build cgo

package memguard

import (
	"fmt"
	"runtime/debug"
	"unsafe"
)

// wipeSource wipes the caller's copy of a secret that a constructor has
// taken. Memory that cannot be written, such as the data of a frozen Buffer
// handed in from its WithData callback, makes the write fault: the fault is
// turned into a panic for this goroutine only and recovered. If src lies in
// a live Buffer, it is left as it is (its owner wipes it on Destroy);
// otherwise src is read-only memory the library cannot wipe, and the
// result is ErrInvalidArgument.
func wipeSource(src []byte) (err error) {
	if len(src) == 0 {
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() == nil {
			return
		}
		if !ownsMemory(unsafe.Pointer(unsafe.SliceData(src)), len(src)) {
			err = fmt.Errorf("%w: the source is read-only memory that cannot be wiped; copy it into a writable slice first", ErrInvalidArgument)
		}
	}()
	wipeBytes(src)
	return nil
}

// ownsMemory reports whether the n bytes at p lie inside the data pages of
// one live Buffer. It walks the registry: it is for the rare path where a
// wipe faulted, never for a hot one.
func ownsMemory(p unsafe.Pointer, n int) bool {
	start := uintptr(p)
	for _, s := range buffers.snapshot() {
		s.protMu.Lock()
		r := s.region
		inside := r != nil && start >= uintptr(unsafe.Pointer(r.pages)) &&
			start+uintptr(n) <= uintptr(unsafe.Pointer(r.pages))+uintptr(r.pages_len)
		s.protMu.Unlock()
		if inside {
			return true
		}
	}
	return false
}
