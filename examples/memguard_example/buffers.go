package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"

	"github.com/securememory/memguard"
)

func buffers() error {
	step("a random 32-byte key, generated straight into protected memory")
	key, err := memguard.NewBufferRandom(32)
	if err != nil {
		return err
	}
	defer key.Destroy()
	note("%v - fmt never shows the contents", key)

	step("use it inside a callback: an HMAC over a message")
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
	note("HMAC-SHA256(key, \"hello\") = %x...", tag[:8])

	step("frozen buffers are read-only in hardware; Melt to write")
	err = key.WithDataMut(func([]byte) error { return nil })
	note("WithDataMut on a frozen buffer: %v (ErrImmutable: %v)", err, errors.Is(err, memguard.ErrImmutable))
	if err := key.Melt(); err != nil {
		return err
	}
	if err := key.Scramble(); err != nil {
		return err
	}
	note("melted and scrambled: %v", key)
	if err := key.Wipe(); err != nil {
		return err
	}
	zero, err := key.EqualTo(make([]byte, 32))
	if err != nil {
		return err
	}
	note("wiped: all zeros (constant-time EqualTo): %v", zero)
	note("Verify checks both canaries and the padding now: %v", key.Verify())

	step("destroy wipes and unmaps; later use is an error, not a crash")
	if err := key.Destroy(); err != nil {
		return err
	}
	note("WithData after Destroy: %v", key.WithData(func([]byte) error { return nil }))
	note("Destroy again: %v (idempotent)", key.Destroy())
	return nil
}

func readersAndCopies() error {
	step("a password read straight from a reader into protected memory")
	password, err := memguard.NewBufferFromEntireReader(bytes.NewReader([]byte("correct horse battery staple")))
	if err != nil {
		return err
	}
	defer password.Destroy()
	ok, err := password.EqualTo([]byte("correct horse battery staple"))
	if err != nil {
		return err
	}
	note("%v, equal to the right guess: %v", password, ok)

	step("exactly n bytes from a reader; a short read is an error and leaves nothing")
	_, err = memguard.NewBufferFromReader(bytes.NewReader([]byte("short")), 32)
	note("NewBufferFromReader(5 bytes, 32): %v", err)

	step("copying from a []byte wipes the source")
	src := []byte("api-token-1234")
	token, err := memguard.NewBufferFromBytes(src)
	if err != nil {
		return err
	}
	defer token.Destroy()
	note("source afterwards: %q", src)

	step("bad input is a clear error, never a panic")
	_, err = memguard.NewBuffer(-1)
	note("NewBuffer(-1): %v", err)
	return nil
}
