package memguard

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/chacha20poly1305"
)

// The test vectors of c2sp.org/XAES-256-GCM, through both of newXAES's
// GCMs: the one taking XAES's whole nonce (which GODEBUG=fips140=only
// refuses, so it runs with enforcement lifted), and suiteApproved's, which
// finds the GCM nonce before the ciphertext.
func TestXAESVectors(t *testing.T) {
	fips140.WithoutEnforcement(func() { testXAESVectors(t) })
}

func testXAESVectors(t *testing.T) {
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

		aead, state, err := newXAES(bytes.Repeat([]byte{v.key}, keySize), nonce, false)
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

		approved, state, err := newXAES(bytes.Repeat([]byte{v.key}, keySize), nonce, true)
		require.NoError(t, err)
		opened, err = approved.Open(nil, nil, append(bytes.Clone(nonce[xaesPrefix:]), want...), []byte(v.aad))
		require.NoError(t, err, "key %#x, random-nonce GCM", v.key)
		assert.Equal(t, plaintext, opened)
		resealed := approved.Seal(nil, nil, plaintext, []byte(v.aad))
		assert.Len(t, resealed, gcmNonceSize+len(want))
		opened, err = approved.Open(nil, nil, resealed, []byte(v.aad))
		require.NoError(t, err)
		assert.Equal(t, plaintext, opened)
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
// In FIPS 140-3 mode every enclave is suiteApproved instead.
func TestEnclaveCipherBySize(t *testing.T) {
	if fips140.Enabled() {
		e, err := NewEnclave(pattern(1))
		require.NoError(t, err)
		assert.Equal(t, suiteApproved, e.suite, "FIPS 140-3 mode")
		t.Skip("FIPS 140-3 mode seals with suiteApproved only (TestApprovedSuiteLayout)")
	}
	for _, n := range []int{1, xaesMinSize - 1, xaesMinSize, 3*sealChunk + 5} {
		e, err := NewEnclave(pattern(n))
		require.NoError(t, err)
		assert.Equal(t, suiteBySize, e.suite)
		key := make([]byte, keySize) // a test may hold the key in the heap
		require.NoError(t, e.key.WithKey(func(k []byte) error { copy(key, k); return nil }))
		nonce := e.sealed[:nonceSize]

		xchacha, err := chacha20poly1305.NewX(key)
		require.NoError(t, err)
		xaes, _, err := newXAES(bytes.Clone(key), nonce, false)
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
// CPUs that have the instructions. The GCM of suiteApproved, which draws
// its own nonces, wraps the same state in a struct; wipeKeyState finds it
// there and wipes it.
func TestAESStateIsWipeable(t *testing.T) {
	block, err := aes.NewCipher(pattern(keySize))
	require.NoError(t, err)
	assert.True(t, wipeable(reflect.TypeOf(block)), "%T", block)
	if !fips140.Enforced() { // which refuses GCM with the caller's nonces
		gcm, err := cipher.NewGCM(block)
		require.NoError(t, err)
		assert.True(t, wipeable(reflect.TypeOf(gcm)), "%T", gcm)
	}

	random, err := cipher.NewGCMWithRandomNonce(block)
	require.NoError(t, err)
	v := reflect.ValueOf(random)
	require.Equal(t, reflect.Struct, v.Kind(), "%T", random)
	require.Equal(t, 1, v.NumField(), "%T", random)
	inner := v.Field(0)
	require.True(t, wipeable(inner.Type()), "%v", inner.Type())
	mem := unsafe.Slice((*byte)(inner.UnsafePointer()), inner.Type().Elem().Size())
	require.True(t, bytes.Contains(mem, pattern(keySize)[:16]), "the GCM value holds the key schedule")
	wipeKeyState(random)
	assert.Equal(t, make([]byte, len(mem)), mem, "wiped through the wrapper")
}

// suiteApproved's layout: the header, then per chunk a 12-byte GCM nonce,
// the ciphertext and the tag, under the XAES key derived from the first
// 12 bytes of the base nonce, with the header and the chunk's index as
// associated data. It works in any mode, so it is tested in every run.
func TestApprovedSuiteLayout(t *testing.T) {
	n := 2*sealChunk + 7
	e, err := seal(pattern(n), suiteApproved)
	require.NoError(t, err)
	assert.Equal(t, suiteApproved, e.suite)
	require.Len(t, e.sealed, headerSize+n+3*(gcmNonceSize+tagSize))
	assert.Equal(t, pattern(n), open(t, e))

	key := make([]byte, keySize) // a test may hold the key in the heap
	require.NoError(t, e.key.WithKey(func(k []byte) error { copy(key, k); return nil }))
	aead, _, err := newXAES(key, e.sealed[:nonceSize], true)
	require.NoError(t, err)
	body := e.sealed[headerSize:]
	nonces := map[string]bool{}
	for i := 0; i < 3; i++ {
		m := min(sealChunk, n-i*sealChunk)
		chunk := body[:gcmNonceSize+m+tagSize]
		ad := binary.BigEndian.AppendUint64(bytes.Clone(e.sealed[:headerSize]), uint64(i))
		plain, err := aead.Open(nil, nil, chunk, ad)
		require.NoError(t, err, "chunk %d", i)
		assert.Equal(t, pattern(n)[i*sealChunk:][:m], plain, "chunk %d", i)
		_, err = aead.Open(nil, nil, chunk, e.sealed[:headerSize])
		assert.Error(t, err, "chunk %d without its index", i)
		assert.False(t, nonces[string(chunk[:gcmNonceSize])], "chunk %d repeats a nonce", i)
		nonces[string(chunk[:gcmNonceSize])] = true
		body = body[len(chunk):]
	}
	assert.Empty(t, body)
}

// A cipher that cannot be set up is ErrCipher when sealing, and
// ErrDecryption with ErrCipher when opening; nothing is left behind.
func TestCipherRefused(t *testing.T) {
	const bogus suite = 7
	e, err := seal(pattern(10), bogus)
	assert.ErrorIs(t, err, ErrCipher)
	assert.Nil(t, e)

	key, err := currentKey()
	require.NoError(t, err)
	sealed := make([]byte, sealedSize(10, bogus))
	binary.BigEndian.PutUint64(sealed[nonceSize:], 10)
	before := Stats().LiveBuffers
	odd := &Enclave{key: key, sealed: sealed, size: 10, suite: bogus}
	b, err := odd.Open()
	assert.ErrorIs(t, err, ErrDecryption)
	assert.ErrorIs(t, err, ErrCipher)
	assert.Nil(t, b)
	assert.Equal(t, before, Stats().LiveBuffers)
}

// Under GODEBUG=fips140=only (make test-fips), Go refuses XChaCha20-Poly1305
// and GCM with the caller's nonces: an enclave of suiteBySize, which this
// process could only have made with enforcement lifted, fails to open with
// package errors, and sealing one fails likewise. The process's own suite
// works (every other test of the run).
func TestFIPSOnlyRefusesOtherSuite(t *testing.T) {
	if !fips140.Enforced() {
		t.Skip("needs GODEBUG=fips140=only")
	}
	for _, n := range []int{32, xaesMinSize} {
		_, err := seal(pattern(n), suiteBySize)
		assert.ErrorIs(t, err, ErrCipher, "%d bytes", n)

		var e *Enclave
		fips140.WithoutEnforcement(func() { e, err = seal(pattern(n), suiteBySize) })
		require.NoError(t, err, "%d bytes, enforcement lifted", n)
		b, err := e.Open()
		assert.ErrorIs(t, err, ErrDecryption, "%d bytes", n)
		assert.ErrorIs(t, err, ErrCipher, "%d bytes", n)
		assert.Nil(t, b)
	}
}

func TestWipeKeyState(t *testing.T) {
	wrapped := &[4]byte{1, 2, 3, 4}
	wipeKeyState(struct{ p *[4]byte }{wrapped})
	assert.Equal(t, &[4]byte{}, wrapped, "a one-pointer wrapper stands for its pointer")

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
