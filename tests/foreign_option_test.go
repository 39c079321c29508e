package tests

import (
	"testing"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
)

// A caller's type that embeds an Option, nil or not, is not an Option of
// the package: every call that takes one reports ErrInvalidArgument, and
// none panics.
func TestForeignOptionIsInvalid(t *testing.T) {
	type wrapped struct{ memguard.Option }
	type wrappedCoffer struct{ memguard.CofferOption }
	for _, opt := range []memguard.Option{wrapped{}, wrapped{memguard.Compact()}} {
		b, err := memguard.NewBuffer(32, opt)
		assert.ErrorIs(t, err, memguard.ErrInvalidArgument)
		assert.Nil(t, b)
		assert.ErrorIs(t, memguard.SetDefaultOptions(opt), memguard.ErrInvalidArgument)
		e, err := memguard.NewEnclave([]byte("a secret of the caller's"))
		if assert.NoError(t, err) {
			_, err = e.Open(opt)
			assert.ErrorIs(t, err, memguard.ErrInvalidArgument)
		}
	}
	for _, opt := range []memguard.CofferOption{wrappedCoffer{}, wrappedCoffer{memguard.WithRekeyInterval(0)}} {
		c, err := memguard.NewCoffer(opt)
		assert.ErrorIs(t, err, memguard.ErrInvalidArgument)
		assert.Nil(t, c)
	}
}
