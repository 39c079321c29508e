package main

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/securememory"
)

func streams() error {
	step("a stream: written in sealed chunks, read back by opening them")
	s := memguard.NewStream(memguard.WithChunkSize(8))
	msg := []byte("a secret longer than one chunk")
	if _, err := s.Write(msg); err != nil {
		return err
	}
	note("%d bytes in the stream; the source is wiped: %v", s.Size(), msg[0] == 0)
	head := make([]byte, 5)
	if _, err := io.ReadFull(s, head); err != nil {
		return err
	}
	note("read 5 bytes (the rest of that chunk was sealed again); %d left", s.Size())
	rest, err := s.Flush()
	if err != nil {
		return err
	}
	note("Flush: %v", rest)
	return rest.Destroy()
}

func secrets() error {
	step("Asherah's securememory contract: read-only, no access when idle")
	factory := new(securememory.Factory)
	secret, err := factory.CreateRandom(32)
	if err != nil {
		return err
	}
	digest, err := secret.WithBytesFunc(func(b []byte) ([]byte, error) {
		sum := sha256.Sum256(b) // a value derived from the secret, returned to the caller
		return sum[:4], nil
	})
	note("WithBytesFunc returned %d bytes (%v); allocated %d, in use %d",
		len(digest), err, securememory.AllocCounter.Count(), securememory.InUseCounter.Count())
	if err := secret.Close(); err != nil {
		return err
	}
	note("after Close: %v", secret.WithBytes(func([]byte) error { return nil }))
	return nil
}

func emergencies() error {
	step("process settings are opt-in; these calls are the only ones that change any")
	memguard.SetLockPolicy(memguard.LockBestEffort) // never fail for want of lockable memory
	if err := memguard.DisableCoreDumps(); err != nil {
		return err
	}
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_CORE, &rl)
	note("lock policy: best effort; soft RLIMIT_CORE now %d", rl.Cur)
	memguard.CatchSignal(func(sig os.Signal) { note("caught %v: purging and exiting", sig) })
	note("on SIGINT, SIGTERM, SIGHUP or SIGQUIT: purge, then exit 1")

	step("Purge wipes everything alive and drops the enclave key")
	b, err := memguard.NewBufferRandom(32)
	if err != nil {
		return err
	}
	old, err := memguard.NewEnclave([]byte("sealed before the purge"))
	if err != nil {
		return err
	}
	memguard.Purge()
	_, err = old.Open()
	note("buffer alive: %v; old enclave: %v (ErrDecryption: %v)", b.Alive(), err, errors.Is(err, memguard.ErrDecryption))
	fresh, err := memguard.NewEnclave([]byte("sealed after"))
	note("a new enclave after Purge: %v, %v", fresh, err)
	return err
}
