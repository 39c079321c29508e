//go:build cgo && darwin

package memguard

// On macOS the core uses getentropy(2) and a volatile memset. There is no
// MADV_DONTDUMP or MADV_WIPEONFORK: secrets can reach a core dump (disable
// them with DisableCoreDumps) and a forked child inherits a copy. This port
// is written carefully but not tested by this project's CI.

/*
#cgo darwin CFLAGS: -D_DARWIN_C_SOURCE
*/
import "C"

// wipedOnFork reports whether forked children see the data as zeros.
const wipedOnFork = false
