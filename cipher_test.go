package memguard

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"reflect"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/chacha20poly1305"
)

// The test vectors of c2sp.org/XAES-256-GCM.
func TestXAESVectors(t *testing.T) {
	for _, v := range []struct {
		key            byte
		aad, sealedHex string
	}{
		{0x01, "", "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"},
		{0x03, "c2sp.org/XAES-256-GCM", "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"},
	} {
		nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
		plaintext := []byte("XAES-256-GCM")
		want, err := hex.DecodeString(v.sealedHex)
		require.NoError(t, err)

		aead, state, err := newXAES(bytes.Repeat([]byte{v.key}, keySize), nonce)
		require.NoError(t, err)
		sealed := aead.Seal(nil, nonce, plaintext, []byte(v.aad))
		assert.Equal(t, want, sealed, "key %#x", v.key)
		opened, err := aead.Open(nil, nonce, sealed, []byte(v.aad))
		require.NoError(t, err)
		assert.Equal(t, plaintext, opened)
		sealed[0] ^= 1
		_, err = aead.Open(nil, nonce, sealed, []byte(v.aad))
		assert.Error(t, err, "tampered")
		wipeKeyState(state)
	}
}

// newXAES derives one key for all of an enclave's chunks, which is XAES
// only because chunk nonces never touch the first 12 bytes.
func TestChunkNoncesKeepTheXAESPrefix(t *testing.T) {
	base := pattern(nonceSize)
	var scratch []byte
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 2, 255, 256, 1 << 20, 1<<63 - 1} {
		nonce := chunkNonce(base, i, &scratch)
		assert.Equal(t, base[:xaesPrefix], nonce[:xaesPrefix], "chunk %d", i)
		suffix := string(nonce[xaesPrefix:])
		assert.False(t, seen[suffix], "chunk %d repeats a GCM nonce", i)
		seen[suffix] = true
	}
}

// Small enclaves are XChaCha20-Poly1305; from xaesMinSize up they are
// XAES-256-GCM where the CPU supports it, and XChaCha20-Poly1305 elsewhere.
func TestEnclaveCipherBySize(t *testing.T) {
	for _, n := range []int{1, xaesMinSize - 1, xaesMinSize, 3*sealChunk + 5} {
		e, err := NewEnclave(pattern(n))
		require.NoError(t, err)
		key := make([]byte, keySize) // a test may hold the key in the heap
		require.NoError(t, e.key.WithKey(func(k []byte) error { copy(key, k); return nil }))
		nonce := e.sealed[:nonceSize]

		xchacha, err := chacha20poly1305.NewX(key)
		require.NoError(t, err)
		xaes, _, err := newXAES(bytes.Clone(key), nonce)
		require.NoError(t, err)
		chunk0 := e.sealed[headerSize : headerSize+min(n, sealChunk)+tagSize]
		length := e.sealed[nonceSize:headerSize]
		_, chachaErr := xchacha.Open(nil, nonce, chunk0, length)
		_, xaesErr := xaes.Open(nil, nonce, chunk0, length)

		if n >= xaesMinSize && xaesSupported() {
			assert.NoError(t, xaesErr, "%d bytes: XAES-256-GCM", n)
			assert.Error(t, chachaErr, "%d bytes", n)
		} else {
			assert.NoError(t, chachaErr, "%d bytes: XChaCha20-Poly1305", n)
			assert.Error(t, xaesErr, "%d bytes", n)
		}
		assert.Equal(t, pattern(n), open(t, e))
	}
}

// The values crypto/aes and crypto/cipher keep a key schedule in hold no
// pointers, so wipeKeyState can wipe them, and XAES is not turned off on
// CPUs that have the instructions.
func TestAESStateIsWipeable(t *testing.T) {
	block, err := aes.NewCipher(make([]byte, keySize))
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	assert.True(t, wipeable(reflect.TypeOf(block)), "%T", block)
	assert.True(t, wipeable(reflect.TypeOf(gcm)), "%T", gcm)
}

func TestWipeKeyState(t *testing.T) {
	block, err := aes.NewCipher(pattern(keySize))
	require.NoError(t, err)
	typ := reflect.TypeOf(block).Elem()
	mem := unsafe.Slice((*byte)(reflect.ValueOf(block).UnsafePointer()), typ.Size())
	require.True(t, bytes.Contains(mem, pattern(keySize)[:16]), "the schedule starts with the key")
	wipeKeyState(block)
	assert.Equal(t, make([]byte, typ.Size()), mem, "wiped")

	type withPointer struct {
		key [4]byte
		buf []byte
	}
	held := &withPointer{key: [4]byte{1, 2, 3, 4}, buf: []byte{5}}
	wipeKeyState(held)
	assert.Equal(t, &withPointer{key: [4]byte{1, 2, 3, 4}, buf: []byte{5}}, held, "a value with pointers is left alone")

	var nilBlock *[16]byte
	wipeKeyState(nilBlock)
	wipeKeyState(nil)
	wipeKeyState([4]byte{1}) // not a pointer
}

func TestPointerFree(t *testing.T) {
	for _, c := range []struct {
		value any
		want  bool
	}{
		{[2]uint32{}, true},
		{struct{ a, b int }{}, true},
		{struct{ a [0]*int }{}, true},
		{struct{ a [3]struct{ f bool } }{}, true},
		{"", false},
		{[1]*int{}, false},
		{struct {
			a int
			s []byte
		}{}, false},
		{struct{ m map[int]int }{}, false},
		{struct{ i any }{}, false},
	} {
		assert.Equal(t, c.want, pointerFree(reflect.TypeOf(c.value)), "%T", c.value)
	}
}
