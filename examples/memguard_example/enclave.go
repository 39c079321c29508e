package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/securememory/memguard"
)

// sealAndOpen shows secrets at rest: enclaves, and a coffer's key.
func sealAndOpen() error {
	step("seal a secret into an enclave: encrypted at rest, in ordinary memory")
	b, err := memguard.NewBufferFromBytes([]byte("database password"))
	if err != nil {
		return err
	}
	enclave, err := b.Seal()
	if err != nil {
		return err
	}
	fmt.Println("   ", enclave, "- the buffer is gone:", !b.Alive())

	step("open it: decrypted straight into a new frozen buffer")
	opened, err := enclave.Open()
	if err != nil {
		return err
	}
	same, err := opened.EqualTo([]byte("database password"))
	fmt.Println("    opened", opened, "- equal to the original:", same)
	opened.Destroy()
	if err != nil {
		return err
	}

	step("a coffer: a key kept as two shares and re-keyed in the background")
	coffer, err := memguard.NewCoffer(memguard.WithRekeyInterval(10 * time.Millisecond))
	if err != nil {
		return err
	}
	defer coffer.Destroy()
	view, err := coffer.View() // a frozen copy of the key, in protected memory
	if err != nil {
		return err
	}
	defer view.Destroy()
	if err := coffer.Rekey(); err != nil {
		return err
	}
	err = coffer.WithKey(func(k []byte) error {
		same, err = view.EqualTo(k)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Println("    same key after re-keying:", same)

	step("Purge drops the enclave key: old enclaves no longer open")
	memguard.Purge()
	_, err = enclave.Open()
	fmt.Println("    Open after Purge:", err, "- is ErrDecryption:", errors.Is(err, memguard.ErrDecryption))
	return nil
}
