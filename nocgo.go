//go:build !cgo

// Package memguard needs cgo: its C core maps the protected memory.
package memguard

// This is the only file built without cgo, so the build fails here alone,
// with the reason in the name:
var _ = memguard_requires_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler
