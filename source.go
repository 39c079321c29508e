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
// If Purge wiped the Buffer the source lies in before or during the copy,
// the copy is zeros: ErrDestroyed. A source in a compact Buffer is left as
// it is (its owner wipes it on Destroy): its page is writable, since
// neighbours share it, even when the Buffer is frozen.
//
// Memory that cannot be written, such as a frozen Buffer's data handed in
// from its callback, makes the wipe fault: the fault is turned into a
// panic for this goroutine only and recovered. A Buffer's data is then
// left to its owner; other read-only memory is ErrInvalidArgument. The
// data of a mutable Buffer is writable, and wiped like any other source.
func wipeSource(src []byte) (err error) {
	if len(src) == 0 {
		return nil
	}
	testPoint("source")
	r := rangeOf(unsafe.Pointer(unsafe.SliceData(src)), uintptr(len(src)))
	if wipedMemory.overlaps(r) {
		return fmt.Errorf("%w: the source Buffer was purged", ErrDestroyed)
	}
	if compactArenas.overlaps(r) {
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil && !ownsMemory(r) {
			err = fmt.Errorf("%w: the source is read-only memory that cannot be wiped; copy it into a writable slice first", ErrInvalidArgument)
		}
	}()
	wipeBytes(src)
	return nil
}
