//go:build cgo

package memguard

import "sync/atomic"

// testHook is nil except in tests, which set it to be called at named
// points inside calls that hold a secret without running a callback of the
// caller's there, so that a test can Purge at exactly that point instead
// of hoping a racing goroutine lands there. The points:
//
//	"EqualTo"     EqualTo, inside its read, after the comparison
//	"Verify"      Verify, after the check, still holding the Buffer
//	"Seal"        Buffer.Seal, after encrypting, before destroying the Buffer
//	"fill"        a constructor (Open, Flush, Next, View, the readers...),
//	              after filling the new Buffer, before freezing it
//	"source"      a constructor from a caller's slice (NewBufferFromBytes,
//	              NewEnclave, Stream.Write), after the copy, before
//	              checking and wiping the source
//	"Stream.Read" Stream.Read, after copying a chunk into the caller's slice
//	"reaped"      reapWhenIdle, after freeing the Buffer
//	"sealed"      an enclave seal, after each attempt under the process key
//	"destroy"     a Buffer's destroy, before it marks the Buffer dead
//
// It is loaded atomically because library calls on other goroutines read
// it while a test sets it; unset, a point costs that one load.
var testHook atomic.Pointer[func(point string)]

// testPoint calls testHook, if a test set it, with point.
func testPoint(point string) {
	if h := testHook.Load(); h != nil {
		(*h)(point)
	}
}
