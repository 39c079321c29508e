//go:build cgo && goexperiment.runtimesecret

package memguard

import "runtime/secret"

// eraseTemporaries runs f through runtime/secret, which erases the
// registers and stack f used before it returns, and the heap f allocated
// once it is freed. The enclave cipher keeps an HChaCha20 subkey and a
// Poly1305 key on the stack that the library cannot wipe otherwise.
// runtime/secret is experimental (Go 1.26, linux/amd64 and linux/arm64;
// elsewhere it just calls f).
func eraseTemporaries(f func()) { secret.Do(f) }
