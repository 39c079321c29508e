//go:build cgo && memguard_werror

package memguard

// The project's own checks build with the tag memguard_werror, which makes
// every warning in this package's C (the core's header and cgo's glue) an
// error. Users' builds never set it: a warning that a newer compiler adds
// must not break them.

/*
#cgo CFLAGS: -Wall -Wextra -Werror
*/
import "C"
