package securememory

import (
	"bytes"
	"errors"
	"testing"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/internal/purgetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// purgeInside runs call with pause, which holds it where it holds the
// secret while the test purges (purgetest.Inside).
func purgeInside(t *testing.T, call func(pause func()) error) error {
	t.Helper()
	return purgetest.Inside(t, memguard.Purge, call)
}

// purgeInRead is purgeInside for a reader's Read, which pauses right after
// it copied the secret out.
func purgeInRead(t *testing.T, call func() error) error {
	t.Helper()
	return purgeInside(t, func(pause func()) error {
		readHook.Store(&pause)
		defer readHook.Store(nil)
		return call()
	})
}

const purgedSecret = "no zero byte in these 32 bytes!!"

func newSecretT(t *testing.T) Secret {
	t.Helper()
	s, err := new(Factory).New([]byte(purgedSecret))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

var errAction = errors.New("the action's own error")

// An action waits inside while Purge runs, then reads: it sees the wipe,
// and WithBytes reports the closed error, wrapping the action's own error
// if it returned one.
func TestPurgeDuringWithBytes(t *testing.T) {
	for _, actionErr := range []error{nil, errAction} {
		t.Run(errName(actionErr), func(t *testing.T) {
			s := newSecretT(t)
			var after []byte
			err := purgeInside(t, func(pause func()) error {
				return s.WithBytes(func(b []byte) error {
					pause()
					after = bytes.Clone(b)
					return actionErr
				})
			})
			assert.Equal(t, make([]byte, len(purgedSecret)), after, "the action saw the wipe")
			require.Error(t, err, "an action that saw wiped data is never a success")
			assert.ErrorIs(t, err, ErrClosed)
			assert.ErrorIs(t, err, memguard.ErrDestroyed)
			if actionErr == nil {
				assert.EqualError(t, err, closedText)
			} else {
				assert.ErrorIs(t, err, actionErr, "the action's own error is kept")
			}
			assert.True(t, s.IsClosed())
		})
	}
}

// WithBytesFunc: the closed error, and none of the bytes the action
// computed from the wiped secret.
func TestPurgeDuringWithBytesFunc(t *testing.T) {
	for _, actionErr := range []error{nil, errAction} {
		t.Run(errName(actionErr), func(t *testing.T) {
			s := newSecretT(t)
			var out []byte
			err := purgeInside(t, func(pause func()) (err error) {
				out, err = s.WithBytesFunc(func(b []byte) ([]byte, error) {
					pause()
					return bytes.Clone(b), actionErr
				})
				return err
			})
			assert.ErrorIs(t, err, ErrClosed)
			if actionErr != nil {
				assert.ErrorIs(t, err, actionErr)
			}
			assert.Nil(t, out, "what the action computed from wiped data is dropped")
		})
	}
}

func errName(err error) string {
	if err == nil {
		return "action returns nil"
	}
	return "action returns an error"
}

// A Read that copied the secret out before Purge wiped it reports nothing
// read, wipes what it copied, and gives the closed error.
func TestPurgeDuringRead(t *testing.T) {
	s := newSecretT(t)
	r := s.NewReader()
	p := make([]byte, 8)
	var n int
	err := purgeInRead(t, func() (err error) {
		n, err = r.Read(p)
		return err
	})
	assert.EqualError(t, err, closedText)
	assert.Zero(t, n, "no byte of a purged Read counts as read")
	assert.Equal(t, make([]byte, len(p)), p, "what was copied is wiped")
}

// A reader of a Secret purged under it must not give a memguard
// constructor a copy to keep: the copy may be zeros.
func TestPurgeDuringCopyFromReader(t *testing.T) {
	s := newSecretT(t)
	var b *memguard.Buffer
	err := purgeInRead(t, func() (err error) {
		b, err = memguard.NewBufferFromReader(s.NewReader(), len(purgedSecret))
		return err
	})
	assert.ErrorIs(t, err, ErrClosed)
	assert.Nil(t, b, "no Buffer copied from a purged Secret")
}

// A Secret made from another's bytes, purged before the copy: New
// refuses, as memguard's constructors do.
func TestNewFromAPurgedSecret(t *testing.T) {
	s := newSecretT(t)
	var made Secret
	var newErr error
	err := s.WithBytes(func(b []byte) error {
		memguard.Purge()
		made, newErr = new(Factory).New(b)
		return nil
	})
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, newErr, memguard.ErrDestroyed)
	assert.Nil(t, made)
}
