package memguard

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/securememory/memguard/internal/purgetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every call that reads a secret, with a Purge landing while it holds the
// data: the call never reports success over data the Purge wiped.

// purgeInside runs call with pause, which holds it where it holds the
// secret while the test purges (purgetest.Inside).
func purgeInside(t *testing.T, call func(pause func()) error) error {
	t.Helper()
	return purgetest.Inside(t, Purge, call)
}

// purgeAt is purgeInside for calls with no callback to pause in: call
// pauses at the named testHook point, the first time it reaches it.
func purgeAt(t *testing.T, point string, call func() error) error {
	t.Helper()
	return purgeInside(t, func(pause func()) error {
		hook := func(p string) {
			if p == point {
				pause()
			}
		}
		testHook.Store(&hook)
		defer testHook.Store(nil)
		return call()
	})
}

// purgeStorages are the ways a Buffer's memory is held, each with its own
// wipe under a user: a guarded region, one hidden when idle, a compact slot.
var purgeStorages = map[string][]Option{
	"guarded":          nil,
	"NoAccessWhenIdle": {NoAccessWhenIdle()},
	"Compact":          {Compact()},
}

const purgeSize = 48 // pattern(purgeSize) has no zero byte: a wipe shows

// secretBuffer is a mutable Buffer holding pattern(purgeSize).
func secretBuffer(t *testing.T, opts []Option) *Buffer {
	t.Helper()
	b, err := NewBuffer(purgeSize, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Destroy() })
	require.NoError(t, b.WithDataMut(func(d []byte) error { copy(d, pattern(purgeSize)); return nil }))
	return b
}

var errCallback = errors.New("the callback's own error")

// A callback waits inside while Purge runs, then reads: it sees the wipe,
// and the call reports ErrDestroyed, wrapping the callback's own error if
// it returned one.
func TestPurgeDuringCallback(t *testing.T) {
	for storage, opts := range purgeStorages {
		for name, use := range map[string]func(*Buffer, func([]byte) error) error{
			"WithData":    (*Buffer).WithData,
			"WithDataMut": (*Buffer).WithDataMut,
		} {
			for _, fnErr := range []error{nil, errCallback} {
				t.Run(storage+"/"+name+"/"+errName(fnErr), func(t *testing.T) {
					b := secretBuffer(t, opts)
					var before, after []byte
					err := purgeInside(t, func(pause func()) error {
						return use(b, func(d []byte) error {
							before = bytes.Clone(d)
							pause()
							after = bytes.Clone(d)
							return fnErr
						})
					})
					assert.Equal(t, pattern(purgeSize), before)
					assert.Equal(t, make([]byte, purgeSize), after, "the callback saw the wipe")
					require.Error(t, err, "a callback that saw wiped data is never a success")
					assert.ErrorIs(t, err, ErrDestroyed)
					if fnErr != nil {
						assert.ErrorIs(t, err, fnErr, "the callback's own error is kept")
					}
					assert.False(t, b.Alive())
				})
			}
		}
	}
}

func errName(err error) string {
	if err == nil {
		return "fn returns nil"
	}
	return "fn returns an error"
}

// A callback that returns ErrDestroyed itself (from another Buffer) over
// data that was then wiped is reported as it is, not wrapped twice.
func TestPurgeDuringCallbackReturningErrDestroyed(t *testing.T) {
	b := secretBuffer(t, nil)
	own := errors.Join(ErrDestroyed, errCallback)
	err := purgeInside(t, func(pause func()) error {
		return b.WithData(func([]byte) error { pause(); return own })
	})
	assert.Same(t, own, err)
}

// EqualTo, Verify and Seal run no callback of the caller's: Purge lands
// at their test points, while they hold the data.
func TestPurgeDuringReadsWithoutCallback(t *testing.T) {
	for storage, opts := range purgeStorages {
		t.Run(storage+"/EqualTo", func(t *testing.T) {
			b := secretBuffer(t, opts)
			var equal bool
			err := purgeAt(t, "EqualTo", func() (err error) {
				equal, err = b.EqualTo(pattern(purgeSize))
				return err
			})
			assert.ErrorIs(t, err, ErrDestroyed)
			assert.False(t, equal, "a comparison over wiped data never reports a match")
		})
		t.Run(storage+"/Verify", func(t *testing.T) {
			b := secretBuffer(t, opts)
			assert.ErrorIs(t, purgeAt(t, "Verify", b.Verify), ErrDestroyed)
		})
		t.Run(storage+"/Seal", func(t *testing.T) {
			b := secretBuffer(t, opts)
			var e *Enclave
			err := purgeAt(t, "Seal", func() (err error) {
				e, err = b.Seal()
				return err
			})
			assert.ErrorIs(t, err, ErrDestroyed)
			assert.Nil(t, e)
			assert.False(t, b.Alive())
		})
	}
	t.Run("NewEnclaveRandom", func(t *testing.T) {
		var e *Enclave
		err := purgeAt(t, "Seal", func() (err error) {
			e, err = NewEnclaveRandom(purgeSize)
			return err
		})
		assert.ErrorIs(t, err, ErrDestroyed)
		assert.Nil(t, e)
	})
}

// The constructors that copy a caller's slice, given another Buffer's
// data from its callback: a Purge after the copy, before the constructor
// looks at its source, is ErrDestroyed, and nothing is made.
func TestPurgeDuringCopyFromABuffer(t *testing.T) {
	for storage, opts := range purgeStorages {
		for name, construct := range map[string]func([]byte) (any, error){
			"NewBufferFromBytes": func(d []byte) (any, error) { return NewBufferFromBytes(d) },
			"NewEnclave":         func(d []byte) (any, error) { return NewEnclave(d) },
			"Stream.Write": func(d []byte) (any, error) {
				s := NewStream()
				n, err := s.Write(d)
				if n != 0 || s.Size() != 0 {
					return s, err // took something
				}
				return nil, err
			},
		} {
			t.Run(storage+"/"+name, func(t *testing.T) {
				src := secretBuffer(t, opts)
				var made any
				var err error
				outer := purgeAt(t, "source", func() error {
					return src.WithData(func(d []byte) error {
						made, err = construct(d)
						return nil
					})
				})
				assert.ErrorIs(t, outer, ErrDestroyed)
				assert.ErrorIs(t, err, ErrDestroyed)
				assert.Nil(t, made)
			})
		}
	}
}

// Constructors whose new Buffer is purged once filled, before they return
// it: never a Buffer, and the error says so. Each makes what it opens
// first, since the Purge takes keys and coffers with it.
func TestPurgeDuringFill(t *testing.T) {
	secret := pattern(purgeSize)
	// Set-up failures return early: purgeAt then fails the test, from its
	// own goroutine.
	streamed := func(chunk int, take func(*Stream) (*Buffer, error)) func() (*Buffer, error) {
		return func() (*Buffer, error) {
			s := NewStream(WithChunkSize(chunk))
			if _, err := s.Write(bytes.Clone(secret)); err != nil {
				return nil, err
			}
			return take(s)
		}
	}
	for name, tc := range map[string]struct {
		make func() (*Buffer, error)
		want error
	}{
		"Open": {func() (*Buffer, error) {
			e, err := NewEnclave(bytes.Clone(secret))
			if err != nil {
				return nil, err
			}
			return e.Open()
		}, ErrDecryption},
		"Stream.Next":  {streamed(purgeSize, (*Stream).Next), ErrDecryption},
		"Stream.Flush": {streamed(purgeSize/3, (*Stream).Flush), ErrDecryption},
		"Coffer.View": {func() (*Buffer, error) {
			c, err := NewCoffer(WithRekeyInterval(0))
			if err != nil {
				return nil, err
			}
			defer c.Destroy()
			return c.View()
		}, ErrDestroyed},
		"NewBufferFromBytes":  {func() (*Buffer, error) { return NewBufferFromBytes(bytes.Clone(secret)) }, ErrDestroyed},
		"NewBufferRandom":     {func() (*Buffer, error) { return NewBufferRandom(purgeSize) }, ErrDestroyed},
		"NewBufferFromReader": {func() (*Buffer, error) { return NewBufferFromReader(bytes.NewReader(secret), purgeSize) }, ErrDestroyed},
		"NewBufferFromEntireReader": {func() (*Buffer, error) {
			return NewBufferFromEntireReader(bytes.NewReader(secret))
		}, ErrDestroyed},
	} {
		t.Run(name, func(t *testing.T) {
			var b *Buffer
			err := purgeAt(t, "fill", func() (err error) {
				b, err = tc.make()
				return err
			})
			assert.ErrorIs(t, err, tc.want)
			assert.Nil(t, b)
		})
	}
}

// Stream.Read copies a chunk, then Purge wipes it: the bytes copied are
// wiped in p, none is reported read, and the chunk stays.
func TestPurgeDuringStreamRead(t *testing.T) {
	secret := pattern(purgeSize)
	s := NewStream()
	_, err := s.Write(bytes.Clone(secret))
	require.NoError(t, err)
	p := make([]byte, purgeSize/2)
	var n int
	err = purgeAt(t, "Stream.Read", func() (err error) {
		n, err = s.Read(p)
		return err
	})
	assert.ErrorIs(t, err, ErrDecryption)
	assert.NotErrorIs(t, err, io.EOF)
	assert.Zero(t, n)
	assert.Equal(t, make([]byte, len(p)), p, "what was copied is wiped")
	assert.Equal(t, purgeSize, s.Size(), "the chunk stays")
}

// WithKey: the key is wiped under the callback; the call reports
// ErrCofferDestroyed, with the callback's own error if it had one.
func TestPurgeDuringWithKey(t *testing.T) {
	for _, fnErr := range []error{nil, errCallback} {
		t.Run(errName(fnErr), func(t *testing.T) {
			c, err := NewCoffer(WithRekeyInterval(0))
			require.NoError(t, err)
			defer c.Destroy()
			var after []byte
			err = purgeInside(t, func(pause func()) error {
				return c.WithKey(func(k []byte) error {
					pause()
					after = bytes.Clone(k)
					return fnErr
				})
			})
			assert.Equal(t, make([]byte, keySize), after, "the callback saw the wipe")
			assert.ErrorIs(t, err, ErrCofferDestroyed)
			if fnErr != nil {
				assert.ErrorIs(t, err, fnErr, "the callback's own error is kept")
			}
			assert.True(t, c.Destroyed())
		})
	}
}

// Rekey reads the shares with no callback of the caller's: its random
// source is the point to purge at.
func TestPurgeDuringRekey(t *testing.T) {
	Purge() // no coffer's re-key loop reads rekeyRandom while it is replaced
	c, err := NewCoffer(WithRekeyInterval(0))
	require.NoError(t, err)
	defer c.Destroy()
	defer func() { rekeyRandom = randomBytes }()
	err = purgeInside(t, func(pause func()) error {
		rekeyRandom = func(b []byte) error {
			pause()
			return randomBytes(b)
		}
		return c.Rekey()
	})
	assert.ErrorIs(t, err, ErrCofferDestroyed)
}

// A seal whose key every Purge takes, attempt after attempt, gives up with
// ErrDestroyed (as any call Purge cut short), never a bare
// ErrCofferDestroyed about a Coffer the caller never saw, and no Enclave.
func TestSealPurgedOnEveryAttempt(t *testing.T) {
	attempts := 0
	hook := func(p string) {
		if p == "sealed" {
			attempts++
			Purge()
		}
	}
	testHook.Store(&hook)
	defer testHook.Store(nil)
	e, err := NewEnclave(pattern(32))
	assert.Nil(t, e)
	assert.ErrorIs(t, err, ErrDestroyed)
	assert.ErrorIs(t, err, ErrCofferDestroyed)
	assert.Equal(t, 4, attempts)
}
