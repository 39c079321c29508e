package memguard_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/securememory/memguard"
	"golang.org/x/crypto/argon2"
)

// A passphrase read up to the end of its line, as from os.Stdin, without
// the newline. Nothing after the newline is consumed.
func ExampleNewBufferFromReaderUntil() {
	stdin := strings.NewReader("correct horse battery staple\nnext input\n")
	passphrase, err := memguard.NewBufferFromReaderUntil(stdin, '\n')
	if err != nil {
		panic(err)
	}
	defer passphrase.Destroy()
	fmt.Println(passphrase)

	rest, _ := io.ReadAll(stdin)
	fmt.Printf("left in the reader: %q\n", rest)

	_, err = memguard.NewBufferFromReaderUntil(stdin, '\n')
	fmt.Println(errors.Is(err, memguard.ErrInvalidSize), errors.Is(err, io.EOF))
	// Output:
	// memguard.Buffer(28 bytes, frozen)
	// left in the reader: "next input\n"
	// true true
}

// A key derived from a passphrase, kept in a Buffer. argon2.IDKey returns
// the key in the Go heap: NewBufferFromBytes copies it into protected
// memory and wipes that copy at once. The derivation itself is beyond
// this library: argon2 reads the passphrase from the callback's slice, as
// it should, but works in 64 MiB of Go heap that it leaves to the garbage
// collector unwiped, and its goroutines' stacks hold intermediate values.
// Built with GOEXPERIMENT=runtimesecret, IDKey with one thread can run
// under secret.Do, which erases that memory (not the stacks of goroutines
// it starts, hence one thread), copying its result into a Buffer made
// beforehand, inside that Buffer's WithDataMut callback: nothing of this
// package may be called inside secret.Do (see
// ExampleBuffer_WithData_runtimeSecret).
func ExampleNewBufferFromBytes_derivedKey() {
	passphrase, err := memguard.NewBufferFromReaderUntil(strings.NewReader("correct horse battery staple\n"), '\n')
	if err != nil {
		panic(err)
	}
	salt := []byte("a random salt, stored beside the ciphertext") // random in real use

	var key *memguard.Buffer
	err = passphrase.WithData(func(p []byte) error {
		derived := argon2.IDKey(p, salt, 3, 64*1024, 4, 32) // RFC 9106's second option
		key, err = memguard.NewBufferFromBytes(derived)     // wipes derived
		return err
	})
	passphrase.Destroy()
	if err != nil {
		panic(err)
	}
	defer key.Destroy()

	err = key.WithData(func(k []byte) error {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte("message"))
		fmt.Printf("HMAC-SHA256 under the derived key: %x...\n", mac.Sum(nil)[:8])
		return nil
	})
	fmt.Println(key, err)
	// Output:
	// HMAC-SHA256 under the derived key: 78f6a53c640d1403...
	// memguard.Buffer(32 bytes, frozen) <nil>
}

func ExampleEnclave_WithData() {
	enclave, err := memguard.NewEnclave([]byte("database password"))
	if err != nil {
		panic(err)
	}
	// Opened, used and destroyed in one call.
	err = enclave.WithData(func(password []byte) error {
		fmt.Println(len(password), "bytes, in a frozen Buffer until this returns")
		return nil
	})
	fmt.Println(err)

	errRefused := errors.New("refused")
	err = enclave.WithData(func([]byte) error { return errRefused })
	fmt.Println(err == errRefused)
	// Output:
	// 17 bytes, in a frozen Buffer until this returns
	// <nil>
	// true
}
