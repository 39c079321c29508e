//go:build cgo && !goexperiment.runtimesecret

package memguard

// eraseTemporaries runs f. Built with GOEXPERIMENT=runtimesecret, it also
// erases what f left in registers and on the stack (erase_secret.go).
func eraseTemporaries(f func()) { f() }
