//go:build linux

package memguard

import (
	"bytes"
	"io"
	"runtime"
	"testing"

	"github.com/securememory/memguard/internal/memscan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The enclave key is assembled only in protected memory; the copies the
// ciphers make in the heap (x/crypto's copy of the key, crypto/aes's key
// schedules) are wiped. After many seals and opens, no copy of the key, or
// of the key XAES derives for a large enclave, is left in any other
// mapping of the process.
func TestNoEnclaveKeyResidue(t *testing.T) {
	ref := memscan.Private(t, 4096)
	Purge() // a fresh process key for this test
	first, err := NewEnclave(pattern(100))
	require.NoError(t, err)
	require.NoError(t, processKey.coffer.WithKey(func(k []byte) error { copy(ref, k); return nil }))
	key := ref[:keySize]

	for i := 0; i < 50; i++ {
		e, err := NewEnclave(pattern(64))
		require.NoError(t, err)
		b, err := e.Open()
		require.NoError(t, err)
		require.NoError(t, b.Destroy())
	}
	big, err := NewEnclave(pattern(3*sealChunk + 5))
	require.NoError(t, err)
	b, err := big.Open()
	require.NoError(t, err)
	require.NoError(t, b.Destroy())
	s := NewStream(WithChunkSize(10))
	_, err = s.Write(pattern(45))
	require.NoError(t, err)
	_, err = io.ReadAll(s)
	require.NoError(t, err)
	assert.Equal(t, pattern(100), open(t, first))
	needles := [][]byte{key}
	if big.suite == suiteApproved || useXAES(big.Size()) {
		derived := ref[keySize : 2*keySize]
		copy(derived, key)
		_, state, err := newXAES(derived, big.sealed[:nonceSize], big.suite == suiteApproved)
		require.NoError(t, err)
		wipeKeyState(state)
		needles = append(needles, derived)
	}
	runtime.GC()

	exclude := []memscan.Span{memscan.SpanOf(ref)}
	hits, err := memscan.Find(needles, exclude)
	require.NoError(t, err)
	assert.Empty(t, hits, "copies of the enclave key or a derived key outside protected memory")

	leak := bytes.Clone(key) // control: a heap copy is found
	hits, err = memscan.Find([][]byte{key}, exclude)
	require.NoError(t, err)
	assert.NotEmpty(t, hits)
	WipeBytes(leak)
}
