//go:build linux && goexperiment.runtimesecret

package memguard

import (
	"crypto/cipher"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/securememory/memguard/internal/memscan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
)

// Built with GOEXPERIMENT=runtimesecret, a seal or an open leaves no copy
// of the HChaCha20 subkey it derives, which the cipher keeps on the stack:
// without the experiment it stays there after the call returns.
func TestNoSubkeyResidue(t *testing.T) {
	ref := memscan.Private(t, 4096)
	exclude := []memscan.Span{memscan.SpanOf(ref)}
	Purge() // a fresh process key for this test
	key := ref[:keySize]
	require.NoError(t, currentKeyInto(key))

	scan := func(needle []byte) []string {
		hits, err := memscan.Find([][]byte{needle}, exclude)
		require.NoError(t, err)
		return hits
	}

	var e *Enclave
	release := parkAfter(func() {
		var err error
		e, err = NewEnclave(pattern(64))
		require.NoError(t, err)
	})
	subkey := ref[keySize : 2*keySize]
	eraseTemporaries(func() {
		sub, err := chacha20.HChaCha20(key, e.sealed[:16])
		if err != nil {
			t.Fatal(err)
		}
		copy(subkey, sub)
	})
	assert.Empty(t, scan(subkey), "copies of the subkey after NewEnclave")
	release()

	release = parkAfter(func() {
		b, err := e.Open()
		require.NoError(t, err)
		require.NoError(t, b.Destroy())
	})
	assert.Empty(t, scan(subkey), "copies of the subkey after Open")
	release()

	// Control: the same decryption without eraseTemporaries leaves it.
	var aead cipher.AEAD
	release = parkAfter(func() {
		var err error
		aead, err = chacha20poly1305.NewX(key)
		require.NoError(t, err)
		require.NoError(t, openChunks(aead, make([]byte, 64), e.sealed))
	})
	assert.NotEmpty(t, scan(subkey), "the control finds the subkey")
	release()
	wipeKeyState(aead)
}

// currentKeyInto copies the process key into dst.
func currentKeyInto(dst []byte) error {
	c, err := currentKey()
	if err != nil {
		return err
	}
	return c.WithKey(func(k []byte) error { copy(dst, k); return nil })
}

// parkAfter runs f deep in a new goroutine's stack, then leaves that
// goroutine waiting, its stack as f left it, until release is called.
// Collections are off meanwhile: one could shrink the stack, which moves
// it.
func parkAfter(f func()) (release func()) {
	gcPercent := debug.SetGCPercent(-1)
	ran, done := make(chan struct{}), make(chan struct{})
	go func() {
		deep(8, f)
		close(ran)
		<-done
	}()
	<-ran
	return func() {
		close(done)
		debug.SetGCPercent(gcPercent)
	}
}

// deep calls f under n frames of padding, so that what the goroutine does
// after f returns (waiting on a channel) cannot overwrite f's old frames.
func deep(n int, f func()) {
	var pad [512]byte
	if n == 0 {
		f()
	} else {
		deep(n-1, f)
	}
	runtime.KeepAlive(&pad)
}
