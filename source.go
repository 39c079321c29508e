//go:build cgo

package memguard

import (
	"fmt"
	"runtime/debug"
	"unsafe"
)

// wipeSource wipes the caller's copy of a secret that a constructor has
// taken, called once the copy is made.
//
// A source in the library's own memory (the data of a Buffer, handed in
// from its callback to trim a secret) is left as it is: its owner wipes it
// on Destroy. If Purge wiped that Buffer before or during the copy, the
// copy is zeros: ErrDestroyed.
//
// Other memory that cannot be written makes the wipe fault: the fault is
// turned into a panic for this goroutine only and recovered, and the
// result is ErrInvalidArgument.
func wipeSource(src []byte) (err error) {
	if len(src) == 0 {
		return nil
	}
	r := rangeOf(unsafe.Pointer(unsafe.SliceData(src)), uintptr(len(src)))
	if ownMemory.overlaps(r) || compactArenas.overlaps(r) {
		if wipedMemory.overlaps(r) {
			return fmt.Errorf("%w: the source Buffer was purged", ErrDestroyed)
		}
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			err = fmt.Errorf("%w: the source is read-only memory that cannot be wiped; copy it into a writable slice first", ErrInvalidArgument)
		}
	}()
	wipeBytes(src)
	return nil
}
