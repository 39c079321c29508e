//go:build cgo && goexperiment.runtimesecret

package memguard_test

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"runtime/secret"

	"github.com/securememory/memguard"
)

// A cipher run under runtime/secret inside a callback, in a program built
// with GOEXPERIMENT=runtimesecret (Go 1.26; it erases on linux/amd64 and
// arm64, and elsewhere only calls its function). crypto/aes copies the key
// into a key schedule in the Go heap, and the cipher leaves key material
// on the stack and in registers: secret.Do erases the stack and registers
// before it returns, and the heap values allocated inside it once the
// garbage collector frees them. Results go into slices made outside, so
// that what is kept is not erased. Call nothing of this package inside
// secret.Do: most of it makes cgo calls, which crash there in Go 1.26
// (golang/go#78999).
func ExampleBuffer_WithData_runtimeSecret() {
	key, err := memguard.NewBufferRandom(32)
	if err != nil {
		panic(err)
	}
	defer key.Destroy()

	plaintext := []byte("attack at dawn")
	// GCM with random nonces puts its 12-byte nonce before the ciphertext.
	sealed := make([]byte, 0, 12+len(plaintext)+16)
	opened := make([]byte, 0, len(plaintext))
	err = key.WithData(func(k []byte) error {
		var err error
		secret.Do(func() {
			var block cipher.Block
			if block, err = aes.NewCipher(k); err != nil {
				return
			}
			var gcm cipher.AEAD
			if gcm, err = cipher.NewGCMWithRandomNonce(block); err != nil {
				return
			}
			sealed = gcm.Seal(sealed, nil, plaintext, nil)
			opened, err = gcm.Open(opened, nil, sealed, nil)
		})
		return err
	})
	fmt.Println(len(sealed), string(opened), err)
	// Output:
	// 42 attack at dawn <nil>
}
