package memguard

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func keyOf(t *testing.T, c *Coffer) []byte {
	t.Helper()
	var key []byte
	require.NoError(t, c.WithKey(func(k []byte) error {
		key = append([]byte(nil), k...)
		return nil
	}))
	require.Len(t, key, keySize)
	return key
}

func sharesOf(t *testing.T, c *Coffer) []byte {
	t.Helper()
	var shares []byte
	require.NoError(t, c.store.WithData(func(mem []byte) error {
		shares = append([]byte(nil), mem[leftOffset:maskOffset]...)
		return nil
	}))
	return shares
}

func TestCofferKeySurvivesRekey(t *testing.T) {
	c, err := NewCoffer(WithRekeyInterval(0))
	require.NoError(t, err)
	defer c.Destroy()
	key := keyOf(t, c)
	assert.NotEqual(t, make([]byte, keySize), key)
	shares := sharesOf(t, c)
	for i := 0; i < 100; i++ {
		require.NoError(t, c.Rekey())
	}
	assert.Equal(t, key, keyOf(t, c), "the key is unchanged")
	assert.NotEqual(t, shares, sharesOf(t, c), "the stored representation changed")
	view, err := c.View()
	require.NoError(t, err)
	assert.False(t, view.Mutable(), "views are frozen")
	assert.Equal(t, key, read(t, view))
	require.NoError(t, view.Destroy())
}

func TestCofferBackgroundRekey(t *testing.T) {
	c, err := NewCoffer(WithRekeyInterval(time.Millisecond))
	require.NoError(t, err)
	defer c.Destroy()
	key, shares := keyOf(t, c), sharesOf(t, c)
	require.Eventually(t, func() bool { return c.rekeys.Load() >= 5 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, key, keyOf(t, c))
	assert.NotEqual(t, shares, sharesOf(t, c))
}

func TestCoffersHaveDifferentKeys(t *testing.T) {
	a, err := NewCoffer()
	require.NoError(t, err)
	defer a.Destroy()
	b, err := NewCoffer()
	require.NoError(t, err)
	defer b.Destroy()
	assert.NotEqual(t, keyOf(t, a), keyOf(t, b))
}

func TestCofferKeySlotIsWiped(t *testing.T) {
	c, err := NewCoffer()
	require.NoError(t, err)
	defer c.Destroy()
	var kept []byte
	require.NoError(t, c.WithKey(func(k []byte) error {
		kept = k // deliberately kept, to look at it afterwards
		assert.NotEqual(t, make([]byte, keySize), k)
		return nil
	}))
	assert.Equal(t, make([]byte, keySize), kept, "wiped once WithKey returns")
}

// What a callback writes over its key slot changes neither the key nor a
// concurrent caller's slot.
func TestCofferKeySlotIsScratch(t *testing.T) {
	c, err := NewCoffer(WithRekeyInterval(0))
	require.NoError(t, err)
	defer c.Destroy()
	key := keyOf(t, c)
	require.NoError(t, c.WithKey(func(outer []byte) error {
		clear(outer)
		assert.Equal(t, key, keyOf(t, c), "a nested call sees the key")
		return nil
	}))
	assert.Equal(t, key, keyOf(t, c))
}

func TestCofferFitsInOnePage(t *testing.T) {
	drainCache()
	before := Stats().LockedBytes
	c, err := NewCoffer()
	require.NoError(t, err)
	assert.Equal(t, os.Getpagesize(), Stats().LockedBytes-before)
	require.NoError(t, c.Destroy())
	drainCache()
	assert.Equal(t, before, Stats().LockedBytes)
}

func TestCofferDestroyed(t *testing.T) {
	c, err := NewCoffer()
	require.NoError(t, err)
	require.NoError(t, c.Destroy())
	require.NoError(t, c.Destroy(), "idempotent")
	var nilCoffer *Coffer
	for _, c := range []*Coffer{c, nilCoffer} {
		assert.True(t, c.Destroyed())
		called := false
		assert.ErrorIs(t, c.WithKey(func([]byte) error { called = true; return nil }), ErrCofferDestroyed)
		assert.False(t, called)
		assert.ErrorIs(t, c.Rekey(), ErrCofferDestroyed)
		v, err := c.View()
		assert.ErrorIs(t, err, ErrCofferDestroyed)
		assert.Nil(t, v)
	}
}

func TestCofferBadArguments(t *testing.T) {
	c, err := NewCoffer(WithRekeyInterval(-time.Second))
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Nil(t, c)
	c, err = NewCoffer(nil)
	require.NoError(t, err)
	defer c.Destroy()
	assert.ErrorIs(t, c.WithKey(nil), ErrInvalidArgument)
}

func TestCofferDestroyStopsGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var all []*Coffer
	for i := 0; i < 50; i++ {
		c, err := NewCoffer(WithRekeyInterval(time.Millisecond))
		require.NoError(t, err)
		all = append(all, c)
	}
	for _, c := range all {
		require.NoError(t, c.Destroy())
	}
}

func TestCofferConcurrentUse(t *testing.T) {
	c, err := NewCoffer(WithRekeyInterval(time.Millisecond))
	require.NoError(t, err)
	key := keyOf(t, c)
	var wg sync.WaitGroup
	for i := 0; i < 2*cofferSlots; i++ { // more than there are slots
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if j%5 == 0 {
					assert.NoError(t, c.Rekey())
				}
				assert.Equal(t, key, keyOf(t, c))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, c.Destroy())
}

// A Purge that takes a coffer's store (as when it races with NewCoffer)
// leaves a destroyed coffer, whose goroutine stops, not a broken live one.
func TestCofferWithPurgedStore(t *testing.T) {
	c, err := NewCoffer(WithRekeyInterval(time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, unmapRegions(c.store.kill(nil)))
	assert.True(t, c.Destroyed())
	assert.ErrorIs(t, c.WithKey(func([]byte) error { return nil }), ErrCofferDestroyed)
	assert.ErrorIs(t, c.Rekey(), ErrCofferDestroyed)
	<-c.done // the re-key goroutine noticed and stopped
	require.NoError(t, c.Destroy())
}
