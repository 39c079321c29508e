//go:build memguard_werror

package csrc

// The project's own checks build with the tag memguard_werror, which makes
// every warning in the core an error. Users' builds never set it: a warning
// that a newer compiler adds must not break them.

/*
#cgo CFLAGS: -Wall -Wextra -Werror
*/
import "C"
