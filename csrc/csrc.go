// Package csrc compiles memguard's C core. It has no Go API: the memguard
// package calls the core directly through cgo and links against the
// objects built here.
//
// The core is its own package, rather than #included into memguard's cgo
// preamble, because the Go build cache tracks C files only in the
// directory of the package that compiles them: an #included file could
// change without anything being rebuilt.
package csrc

/*
#cgo CFLAGS: -std=c11 -O2 -D_DEFAULT_SOURCE
#cgo linux CFLAGS: -D_GNU_SOURCE
#cgo darwin CFLAGS: -D_DARWIN_C_SOURCE
*/
import "C"
