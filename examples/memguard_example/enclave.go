package main

import (
	"time"

	"github.com/securememory/memguard"
)

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
	note("%v - the buffer is gone: %v", enclave, !b.Alive())

	step("open it: decrypted straight into a new frozen buffer")
	opened, err := enclave.Open()
	if err != nil {
		return err
	}
	same, err := opened.EqualTo([]byte("database password"))
	note("opened %v - equal to the original: %v", opened, same)
	opened.Destroy()
	return err
}

func coffers() error {
	step("a coffer: a key kept as two shares, re-keyed in the background")
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
	var same bool
	err = coffer.WithKey(func(k []byte) error {
		same, err = view.EqualTo(k)
		return err
	})
	note("same key after re-keying: %v", same)
	return err
}
