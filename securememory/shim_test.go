package securememory_test

import (
	"io"
	"testing"

	"github.com/securememory/memguard/securememory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Stand-ins for Asherah's own securememory interfaces: the same methods,
// but distinct named types, as they are in Asherah's package.
type asherahSecret interface {
	WithBytes(action func([]byte) error) error
	WithBytesFunc(action func([]byte) ([]byte, error)) ([]byte, error)
	IsClosed() bool
	Close() error
	NewReader() io.Reader
}

type asherahFactory interface {
	New(b []byte) (asherahSecret, error)
	CreateRandom(size int) (asherahSecret, error)
}

// The adapter from docs/GUIDE.md.
type factory struct{ securememory.Factory }

func (f *factory) New(b []byte) (asherahSecret, error) { return nilSafe(f.Factory.New(b)) }
func (f *factory) CreateRandom(n int) (asherahSecret, error) {
	return nilSafe(f.Factory.CreateRandom(n))
}

func nilSafe(s securememory.Secret, err error) (asherahSecret, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

func TestAsherahShim(t *testing.T) {
	var f asherahFactory = new(factory)
	s, err := f.New([]byte("key"))
	require.NoError(t, err)
	assert.NoError(t, s.WithBytes(func(b []byte) error {
		assert.Equal(t, []byte("key"), b)
		return nil
	}))
	assert.NoError(t, s.Close())
	bad, err := f.New(nil)
	assert.Error(t, err)
	assert.True(t, bad == nil, "the shim must not wrap a typed nil")
}
