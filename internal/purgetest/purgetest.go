// Package purgetest lands a Purge at a chosen point inside a call, for the
// tests of memguard and its subpackages.
package purgetest

import (
	"sync"
	"testing"
	"time"
)

// Inside runs call on a goroutine of its own and gives it pause, to call
// where it holds the secret. pause blocks until this goroutine has run
// purge, then returns; Inside returns call's result. The test fails if
// call returns without pausing, or hangs after the purge.
func Inside(t testing.TB, purge func(), call func(pause func()) error) error {
	t.Helper()
	inside, purged := make(chan struct{}), make(chan struct{})
	var once sync.Once
	pause := func() {
		once.Do(func() {
			close(inside)
			<-purged
		})
	}
	done := make(chan error, 1)
	go func() { done <- call(pause) }()
	select {
	case <-inside:
	case err := <-done:
		t.Fatalf("returned (%v) without reaching the point where it holds the secret", err)
	}
	purge()
	close(purged)
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30s after the Purge")
		return nil
	}
}
