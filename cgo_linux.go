//go:build cgo && linux

package memguard

// On Linux the core uses getrandom(2), explicit_bzero(3), and advises the
// data pages MADV_DONTDUMP (no core dumps) and MADV_WIPEONFORK (forked
// children see zeros), both checked.

/*
#cgo linux CFLAGS: -D_GNU_SOURCE
*/
import "C"

// wipedOnFork reports whether forked children see the data as zeros.
const wipedOnFork = true
