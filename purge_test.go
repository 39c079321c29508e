package memguard

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withinDeadline fails the test instead of hanging when fn deadlocks.
func withinDeadline(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("deadlock: still running after %v", d)
	}
}

func TestPurgeInsideCallbacks(t *testing.T) {
	for name, use := range map[string]func(b *Buffer, fn func([]byte) error) error{
		"WithData":        (*Buffer).WithData,
		"WithDataMut":     (*Buffer).WithDataMut,
		"WithData frozen": func(b *Buffer, fn func([]byte) error) error { b.Freeze(); return b.WithData(fn) },
	} {
		t.Run(name, func(t *testing.T) {
			b, err := NewBuffer(64)
			require.NoError(t, err)
			require.NoError(t, b.WithDataMut(func(d []byte) error { copy(d, pattern(64)); return nil }))
			withinDeadline(t, 30*time.Second, func() {
				err := use(b, func(d []byte) error {
					require.Equal(t, pattern(64), d)
					Purge()
					assert.Equal(t, make([]byte, 64), d, "wiped under the reader, still mapped")
					assert.False(t, b.Alive())
					return nil
				})
				assert.ErrorIs(t, err, ErrDestroyed, "fn returned nil over wiped data: never a success")
			})
			assert.ErrorIs(t, b.WithData(func([]byte) error { return nil }), ErrDestroyed)
			assert.NoError(t, b.Destroy())
			assert.NotContains(t, buffers.snapshot(), b.bufferState, "freed once the callback returned")
		})
	}
}

func TestPurgeInsideWithKey(t *testing.T) {
	c, err := NewCoffer(WithRekeyInterval(time.Millisecond))
	require.NoError(t, err)
	withinDeadline(t, 30*time.Second, func() {
		assert.ErrorIs(t, c.WithKey(func(k []byte) error {
			Purge()
			assert.Equal(t, make([]byte, keySize), k, "key wiped under the callback")
			return nil
		}), ErrCofferDestroyed, "a key wiped under fn is never a success")
	})
	assert.True(t, c.Destroyed())
	assert.ErrorIs(t, c.WithKey(func([]byte) error { return nil }), ErrCofferDestroyed)
}

func TestPurgeInsideEnclaveOpen(t *testing.T) {
	e, err := NewEnclave(pattern(32))
	require.NoError(t, err)
	b, err := e.Open()
	require.NoError(t, err)
	withinDeadline(t, 30*time.Second, func() {
		assert.ErrorIs(t, b.WithData(func([]byte) error {
			Purge()
			_, err := e.Open()
			assert.ErrorIs(t, err, ErrDecryption)
			return nil
		}), ErrDestroyed)
	})
}

// Purge from 8 goroutines at once while others read, write, seal, open and
// destroy: nothing deadlocks, panics or is lost, and afterwards the
// accounts balance.
func TestPurgeConcurrentWithEverything(t *testing.T) {
	Purge()
	withinDeadline(t, 2*time.Minute, func() {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		worker := func(work func()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						work()
					}
				}
			}()
		}
		shared := make(chan *Buffer, 64)
		for i := 0; i < 4; i++ {
			worker(func() { // producers
				b, err := NewBufferFromBytes(pattern(48))
				if err == nil {
					select {
					case shared <- b:
					default:
						b.Destroy()
					}
				}
			})
			worker(func() { // readers: either the whole secret or an error
				select {
				case b := <-shared:
					err := b.WithData(func(d []byte) error {
						if !bytes.Equal(d, pattern(48)) && !bytes.Equal(d, make([]byte, 48)) {
							t.Errorf("torn data %x", d)
						}
						return nil
					})
					if err != nil {
						assert.ErrorIs(t, err, ErrDestroyed)
					}
					if e, err := b.Seal(); err == nil {
						if o, err := e.Open(); err == nil {
							o.Destroy()
						} else {
							assert.ErrorIs(t, err, ErrDecryption)
						}
					} else {
						assert.ErrorIs(t, err, ErrDestroyed)
					}
				default:
				}
			})
		}
		worker(func() {
			b, err := NewBuffer(16)
			if err == nil {
				b.WithDataMut(func(d []byte) error { Purge(); return nil })
			}
		})
		var purgers sync.WaitGroup
		for i := 0; i < 8; i++ {
			purgers.Add(1)
			go func() {
				defer purgers.Done()
				for j := 0; j < 50; j++ {
					Purge()
				}
			}()
		}
		purgers.Wait()
		close(stop)
		wg.Wait()
		close(shared)
		for b := range shared {
			b.Destroy()
		}
	})
	Purge()
	s := Stats()
	assert.Zero(t, s.LiveBuffers)
	assert.Zero(t, s.LockedBytes)
	assert.Zero(t, s.UnlockedBuffers)
	assert.Empty(t, buffers.snapshot())
}
