// Command memguard_example walks through the library: run it with
// `make example`.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"

	"github.com/securememory/memguard"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example failed:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run() error {
	step("a random 32-byte key, straight into protected memory")
	key, err := memguard.NewBufferRandom(32)
	if err != nil {
		return err
	}
	defer key.Destroy()
	fmt.Println("   ", key, "- printing it never shows the contents")

	step("use the key inside a callback: an HMAC over a message")
	var tag []byte
	err = key.WithData(func(k []byte) error {
		mac := hmac.New(sha256.New, k) // note: the hash keeps its own copy of k
		mac.Write([]byte("hello"))
		tag = mac.Sum(nil)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("    HMAC-SHA256(key, \"hello\") = %x...\n", tag[:8])

	step("a password from a reader; the reader writes straight into protected memory")
	password, err := memguard.NewBufferFromEntireReader(bytes.NewReader([]byte("correct horse battery staple")))
	if err != nil {
		return err
	}
	defer password.Destroy()
	ok, err := password.EqualTo([]byte("correct horse battery staple"))
	if err != nil {
		return err
	}
	fmt.Println("    constant-time comparison with the right guess:", ok)

	step("frozen buffers are read-only in hardware; melt to change them")
	err = password.WithDataMut(func([]byte) error { return nil })
	fmt.Println("    WithDataMut on a frozen buffer:", err, "- is ErrImmutable:", errors.Is(err, memguard.ErrImmutable))
	if err := password.Melt(); err != nil {
		return err
	}
	if err := password.Scramble(); err != nil {
		return err
	}
	fmt.Println("    melted and scrambled:", password)

	step("copying from a []byte wipes the source")
	src := []byte("api-token-1234")
	token, err := memguard.NewBufferFromBytes(src)
	if err != nil {
		return err
	}
	fmt.Printf("    source afterwards: %q\n", src)

	step("destroy wipes and unmaps; later use is an error, not a crash")
	if err := token.Destroy(); err != nil {
		return err
	}
	err = token.WithData(func([]byte) error { return nil })
	fmt.Println("    WithData after Destroy:", err)

	if err := sealAndOpen(); err != nil {
		return err
	}
	fmt.Println("    the HMAC key died in that purge too:", !key.Alive())

	s := memguard.Stats()
	step("stats: %d live buffers, %d bytes locked, %d unlocked, %d canary failures, memlock limit %d",
		s.LiveBuffers, s.LockedBytes, s.UnlockedBuffers, s.CanaryFailures, s.MemlockLimit)
	return nil
}
