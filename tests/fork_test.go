//go:build linux

package tests

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForkedChildSeesZeros(t *testing.T) {
	marker := bytes.Repeat([]byte("not-a-secret-marker!"), 3) // a pattern, not a secret
	b, err := memguard.NewBufferFromBytes(append([]byte(nil), marker...))
	require.NoError(t, err)
	defer b.Destroy()

	require.NoError(t, b.WithData(func(d []byte) error {
		seen, err := forkPeek(unsafe.Pointer(unsafe.SliceData(d)), len(d))
		require.NoError(t, err)
		assert.Equal(t, make([]byte, len(d)), seen, "MADV_WIPEONFORK: the child sees zeros")
		assert.Equal(t, marker, d, "the parent keeps its data")
		return nil
	}))

	// Control: ordinary memory is inherited, so the check above can fail.
	p, free := cBytes(marker)
	defer free()
	seen, err := forkPeek(p, len(marker))
	require.NoError(t, err)
	assert.Equal(t, marker, seen)
}
