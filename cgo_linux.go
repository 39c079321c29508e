//go:build cgo && linux

package memguard

// On Linux the core (package csrc) uses getrandom(2), explicit_bzero(3) and
// mlock2(MLOCK_ONFAULT), and advises the data pages MADV_DONTDUMP (left out
// of core dumps) and MADV_WIPEONFORK (forked children see zeros), both
// checked. This is the platform the project's CI tests.

/*
#cgo linux CFLAGS: -D_GNU_SOURCE
*/
import "C"
