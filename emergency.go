//go:build cgo

package memguard

import "os"

// Purge destroys every live Buffer and Coffer now, and with them the key of
// every Enclave sealed so far: opening one gives ErrDecryption. A Buffer in
// use by a callback is wiped at once and freed when the callback returns,
// or a moment after (when several calls use it, or Purge's last try of
// the lock meets the callback's);
// the callback may observe the wiped data, and the call it runs in then
// reports an error (ErrDestroyed from a Buffer's, ErrCofferDestroyed from
// WithKey), never success.
// Purge never waits for a callback, never panics, and may be called from
// any goroutine, concurrently, and from inside a callback. The package keeps
// working afterwards, sealing new enclaves under a fresh key.
func Purge() {
	purgeCoffers()
	var batch []*region
	for _, b := range buffers.snapshot() {
		batch = b.kill(batch)
	}
	unmapRegions(append(batch, takeCache()...))
	// Compact Buffers gave their slots back above, through the compact
	// backend; the slots it cached for reuse and the empty chunks the
	// arenas keep go too.
	compactArenas.trim()
	// A Coffer made while the first pass ran has had its key killed with
	// the buffers: mark it too, and stop its goroutine.
	purgeCoffers()
}

// exit ends the process; a variable so that a test can watch SafeExit's
// order of events without ending its own process.
var exit = os.Exit

// SafeExit purges, then exits the process with code. Deferred functions do
// not run.
func SafeExit(code int) {
	Purge()
	exit(code)
}

// SafePanic purges, then panics with v. It is the package's one deliberate
// panic: use it when continuing would be worse, for example on
// ErrCanaryCorrupt.
func SafePanic(v any) {
	Purge()
	panic(v)
}
