package memguard

import (
	"bytes"
	"crypto/fips140"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T, e *Enclave) []byte {
	t.Helper()
	b, err := e.Open()
	require.NoError(t, err)
	defer b.Destroy()
	assert.False(t, b.Mutable(), "opened buffers are frozen")
	return read(t, b)
}

func TestEnclaveRoundTrip(t *testing.T) {
	for _, n := range append(testSizes, 5<<20) {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			src := pattern(n)
			e, err := NewEnclave(src)
			require.NoError(t, err)
			assert.Equal(t, make([]byte, n), src, "source wiped")
			assert.Equal(t, n, e.Size())
			assert.Equal(t, pattern(n), open(t, e))
			assert.Equal(t, pattern(n), open(t, e), "opens again")
		})
	}
}

func TestEnclaveRandom(t *testing.T) {
	a, err := NewEnclaveRandom(32)
	require.NoError(t, err)
	b, err := NewEnclaveRandom(32)
	require.NoError(t, err)
	assert.Equal(t, 32, a.Size())
	assert.NotEqual(t, open(t, a), open(t, b))
	_, err = NewEnclaveRandom(0)
	assert.ErrorIs(t, err, ErrInvalidSize)
}

func TestEnclaveInvalid(t *testing.T) {
	e, err := NewEnclave(nil)
	assert.ErrorIs(t, err, ErrInvalidSize)
	assert.Nil(t, e)
	var nilEnclave *Enclave
	b, err := nilEnclave.Open()
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Nil(t, b)
	assert.Zero(t, nilEnclave.Size())
	assert.Equal(t, "memguard.Enclave(0 bytes)", nilEnclave.String())
}

func TestSeal(t *testing.T) {
	b, err := NewBufferFromBytes(pattern(50))
	require.NoError(t, err)
	e, err := b.Seal()
	require.NoError(t, err)
	assert.False(t, b.Alive(), "Seal destroys the buffer")
	assert.Equal(t, pattern(50), open(t, e))
	assert.Equal(t, "memguard.Enclave(50 bytes)", e.String())

	_, err = b.Seal()
	assert.ErrorIs(t, err, ErrDestroyed)

	c, err := NewBuffer(20)
	require.NoError(t, err)
	corruptions["tail canary"](c.region)
	e, err = c.Seal()
	assert.ErrorIs(t, err, ErrCanaryCorrupt)
	assert.Nil(t, e)
	assert.True(t, c.Alive(), "a failed seal leaves the buffer")
	assert.ErrorIs(t, c.Destroy(), ErrCanaryCorrupt)
}

// Every bit flipped anywhere in the sealed bytes makes Open fail, for both
// ciphers and both suites (cipher.go).
func TestEnclaveTamperingFails(t *testing.T) {
	for _, tc := range []struct {
		n int
		s suite
	}{{32, suiteBySize}, {xaesMinSize, suiteBySize}, {32, suiteApproved}} {
		if fips140.Enforced() && tc.s != suiteApproved {
			continue
		}
		n := tc.n
		t.Run(fmt.Sprint(n, "/suite", tc.s), func(t *testing.T) {
			e, err := seal(pattern(n), tc.s)
			require.NoError(t, err)
			_ = open(t, e) // the key coffer exists before counting
			before := Stats()
			for i := range e.sealed {
				for _, bit := range []byte{0x01, 0x80} {
					e.sealed[i] ^= bit
					b, err := e.Open()
					assert.ErrorIs(t, err, ErrDecryption, "byte %d bit %#x", i, bit)
					assert.Nil(t, b)
					e.sealed[i] ^= bit
				}
			}
			after := Stats()
			assert.Equal(t, before.LiveBuffers, after.LiveBuffers, "a failed Open leaves no buffer")
			assert.Equal(t, before.LockedBytes, after.LockedBytes)
			assert.Equal(t, pattern(n), open(t, e), "untampered opens again")

			for _, sealed := range [][]byte{e.sealed[:len(e.sealed)-1], e.sealed[:headerSize-1], nil} {
				cut := &Enclave{key: e.key, sealed: sealed, size: e.size, suite: e.suite}
				_, err = cut.Open()
				assert.ErrorIs(t, err, ErrDecryption, "cut to %d bytes", len(sealed))
			}
		})
	}
}

func TestEnclaveConcurrentOpen(t *testing.T) {
	e, err := NewEnclave(pattern(100))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				b, err := e.Open()
				if !assert.NoError(t, err) {
					return
				}
				ok, err := b.EqualTo(pattern(100))
				assert.NoError(t, err)
				assert.True(t, ok)
				assert.NoError(t, b.Destroy())
			}
		}()
	}
	wg.Wait()
}

func TestPurgeLosesEnclaveKey(t *testing.T) {
	old, err := NewEnclave(pattern(16))
	require.NoError(t, err)
	live, err := NewBufferRandom(16)
	require.NoError(t, err)
	Purge()
	assert.False(t, live.Alive())
	before := Stats()
	b, err := old.Open()
	assert.ErrorIs(t, err, ErrDecryption)
	assert.Nil(t, b)
	assert.Equal(t, before.LiveBuffers, Stats().LiveBuffers, "nothing leaked")

	fresh, err := NewEnclave(pattern(16))
	require.NoError(t, err, "the library works after Purge")
	assert.Equal(t, pattern(16), open(t, fresh))
}

// testSuites are the suites this process can seal with: both, except
// under GODEBUG=fips140=only, which refuses suiteBySize.
func testSuites() []suite {
	if fips140.Enforced() {
		return []suite{suiteApproved}
	}
	return []suite{suiteBySize, suiteApproved}
}

// Chunks authenticate their place: every rearrangement fails.
func TestEnclaveChunksAreBound(t *testing.T) {
	for _, s := range testSuites() {
		t.Run(fmt.Sprint("suite", s), func(t *testing.T) { testChunksAreBound(t, s) })
	}
}

func testChunksAreBound(t *testing.T, s suite) {
	size := 2*sealChunk + 100 // three chunks
	a, err := seal(pattern(size), s)
	require.NoError(t, err)
	b, err := seal(pattern(size), s)
	require.NoError(t, err)
	require.Len(t, a.sealed, sealedSize(size, s))
	full := sealChunk + s.overhead()
	chunk := func(e *Enclave, i int) []byte {
		start := headerSize + i*full
		return e.sealed[start : start+full]
	}
	mutated := func(change func(s []byte) []byte) *Enclave {
		return &Enclave{key: a.key, sealed: change(bytes.Clone(a.sealed)), size: a.size, suite: s}
	}
	for name, e := range map[string]*Enclave{
		"chunks swapped": mutated(func(s []byte) []byte {
			c0, c1 := bytes.Clone(chunk(a, 0)), bytes.Clone(chunk(a, 1))
			copy(s[headerSize:], c1)
			copy(s[headerSize+len(c0):], c0)
			return s
		}),
		"chunk from another enclave of the same size": mutated(func(s []byte) []byte {
			copy(s[headerSize:], chunk(b, 0))
			return s
		}),
		"last chunk dropped":   mutated(func(s []byte) []byte { return s[:headerSize+2*full] }),
		"a byte appended":      mutated(func(s []byte) []byte { return append(s, 0) }),
		"header only":          mutated(func(s []byte) []byte { return s[:headerSize] }),
		"length field changed": mutated(func(s []byte) []byte { s[headerSize-1] ^= 1; return s }),
		"shorter than a nonce": mutated(func(s []byte) []byte { return s[:5] }),
		"size claims one less": {key: a.key, sealed: a.sealed, size: size - 1, suite: s},
	} {
		before := Stats().LiveBuffers
		buf, err := e.Open()
		assert.ErrorIs(t, err, ErrDecryption, name)
		assert.Nil(t, buf, name)
		assert.Equal(t, before, Stats().LiveBuffers, name)
	}
	assert.Equal(t, pattern(size), open(t, a), "the original still opens")
}

// An Open adds one protected region (its result), not two: the key is
// assembled in the coffer's page, not in a temporary region.
func TestOpenAddsOneRegion(t *testing.T) {
	e, err := NewEnclave(pattern(32))
	require.NoError(t, err)
	drainCache()
	before := Stats()
	b, err := e.Open()
	require.NoError(t, err)
	during := Stats()
	assert.Equal(t, before.LiveBuffers+1, during.LiveBuffers)
	assert.Equal(t, before.LockedBytes+regionPagesFor(32), during.LockedBytes)
	require.NoError(t, b.Destroy())
	assert.Equal(t, before.LiveBuffers, Stats().LiveBuffers)
}

func TestEnclaveWithData(t *testing.T) {
	e, err := NewEnclave(pattern(100))
	require.NoError(t, err)
	before := Stats().LiveBuffers
	var seen []byte
	require.NoError(t, e.WithData(func(data []byte) error {
		seen = bytes.Clone(data)
		assert.Equal(t, before+1, Stats().LiveBuffers, "one Buffer open during fn")
		return nil
	}))
	assert.Equal(t, pattern(100), seen)
	assert.Equal(t, before, Stats().LiveBuffers, "the Buffer is destroyed")

	sentinel := errors.New("fn failed")
	assert.Same(t, sentinel, e.WithData(func([]byte) error { return sentinel }))

	require.NoError(t, e.WithData(func(data []byte) error {
		assert.Equal(t, pattern(100), data)
		return nil
	}, NoAccessWhenIdle()))
	err = e.WithData(func([]byte) error { t.Error("called"); return nil }, NoAccessWhenIdle(), Compact())
	assert.ErrorIs(t, err, ErrInvalidArgument, "options that do not go together")
	assert.Equal(t, before, Stats().LiveBuffers)

	assert.PanicsWithValue(t, "in fn", func() {
		_ = e.WithData(func([]byte) error { panic("in fn") })
	})
	assert.Equal(t, before, Stats().LiveBuffers, "destroyed when fn panics")
	assert.Equal(t, pattern(100), open(t, e), "the Enclave is unchanged")
}

func TestEnclaveWithDataFailures(t *testing.T) {
	e, err := NewEnclave(pattern(10))
	require.NoError(t, err)
	called := false
	fn := func([]byte) error { called = true; return nil }

	assert.ErrorIs(t, e.WithData(nil), ErrInvalidArgument)
	var nilEnclave *Enclave
	assert.ErrorIs(t, nilEnclave.WithData(fn), ErrInvalidArgument)
	assert.ErrorIs(t, new(Enclave).WithData(fn), ErrInvalidArgument)

	e.sealed[len(e.sealed)-1] ^= 1
	assert.ErrorIs(t, e.WithData(fn), ErrDecryption)
	e.sealed[len(e.sealed)-1] ^= 1
	assert.False(t, called, "fn is not called when Open fails")

	// A Purge while fn runs wipes the data fn sees: ErrDestroyed, even
	// though fn returned nil.
	before := Stats().LiveBuffers
	err = e.WithData(func(data []byte) error {
		Purge()
		assert.Equal(t, make([]byte, len(data)), data, "wiped under fn")
		return nil
	})
	assert.ErrorIs(t, err, ErrDestroyed)
	assert.LessOrEqual(t, Stats().LiveBuffers, before)
	assert.ErrorIs(t, e.WithData(fn), ErrDecryption, "the key went with the Purge")
	assert.False(t, called)
}
