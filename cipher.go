//go:build cgo

package memguard

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/subtle"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// Enclaves are sealed with one of two ciphers, both with 192-bit random
// nonces, chosen by the size of the plaintext:
//
//   - XChaCha20-Poly1305 below xaesMinSize, and on CPUs without AES and
//     carry-less multiplication instructions;
//   - XAES-256-GCM (c2sp.org/XAES-256-GCM) from xaesMinSize up. It derives
//     an AES-256-GCM key from the process key and the nonce's first 12
//     bytes, so it keeps XChaCha's nonce margin, and with the instructions
//     it seals about twice as fast. Its set-up (two key schedules, three
//     AES blocks and GCM's table) costs more than XChaCha's, so small
//     messages are faster under XChaCha; xaesMinSize is past the size at
//     which the two cost the same (docs/PERFORMANCE.md).
//
// Without the instructions Go's AES is slow and not constant-time, so
// every enclave is XChaCha20-Poly1305 there. On one machine, the choice
// follows from the size alone, which every chunk authenticates.
//
// In FIPS 140-3 mode that is suiteApproved instead: see suite.
const (
	xaesMinSize = 4 << 10
	xaesPrefix  = 12 // nonce bytes that select the derived key
)

// suite is the way an enclave is sealed, recorded in the Enclave so that
// Open takes the same way.
type suite uint8

const (
	// suiteBySize is XChaCha20-Poly1305 or XAES-256-GCM by size, as above;
	// chunk nonces are derived from the base nonce and stored nowhere.
	suiteBySize suite = iota
	// suiteApproved uses only FIPS 140-3 approved algorithms: XAES-256-GCM
	// at every size and on every CPU. Its key derivation is NIST SP
	// 800-108r1's counter-mode KDF with CMAC-AES-256, and the rest is
	// AES-256-GCM. Go's FIPS module, under GODEBUG=fips140=only, accepts
	// GCM only with nonces it draws itself from its DRBG
	// (cipher.NewGCMWithRandomNonce): each chunk carries its 96-bit nonce
	// before its ciphertext, and its index in its associated data. GCM's
	// bound of 2^32 random nonces applies per derived key, so per enclave.
	suiteApproved
)

// sealingSuite is the suite of the enclaves this process seals:
// suiteApproved in FIPS 140-3 mode (GODEBUG=fips140=on or only), which
// cannot change while the program runs, so a process never holds
// enclaves of both suites.
func sealingSuite() suite {
	if fips140.Enabled() {
		return suiteApproved
	}
	return suiteBySize
}

// overhead is the bytes a chunk adds to its plaintext: the tag, and for
// suiteApproved the GCM nonce too.
func (s suite) overhead() int {
	if s == suiteApproved {
		return gcmNonceSize + tagSize
	}
	return tagSize
}

const gcmNonceSize = 12

// useXAES reports whether an enclave of size plaintext bytes is XAES-256-GCM.
func useXAES(size int) bool { return size >= xaesMinSize && xaesSupported() }

// xaesSupported reports whether Go runs AES-GCM in hardware here and the
// key state crypto/aes and crypto/cipher leave in the Go heap can be
// wiped. It honours GODEBUG=cpu.aes=off, as Go's AES does.
var xaesSupported = sync.OnceValue(func() bool {
	switch runtime.GOARCH {
	case "amd64":
		if !cpu.X86.HasAES || !cpu.X86.HasPCLMULQDQ || !cpu.X86.HasSSE41 || !cpu.X86.HasSSSE3 {
			return false
		}
	case "arm64":
		if !cpu.ARM64.HasAES || !cpu.ARM64.HasPMULL {
			return false
		}
	default:
		return false
	}
	var zero [keySize]byte
	block, err := aes.NewCipher(zero[:])
	if err != nil {
		return false
	}
	gcm, err := cipher.NewGCM(block)
	return err == nil && wipeable(reflect.TypeOf(block)) && wipeable(reflect.TypeOf(gcm))
})

// withCipher calls fn with the cipher of suite s for an enclave of size
// bytes under key k and base nonce, then wipes the key state the cipher
// keeps in the Go heap. k is scratch: XAES writes its derived key over it.
// The cipher also keeps subkeys on the stack (XChaCha's HChaCha20 subkey
// and Poly1305 key, XAES's CMAC subkey), which only eraseTemporaries can
// erase, so fn runs under it and must make no cgo call (golang/go#78999).
//
// If the standard library or x/crypto refuses the cipher, as
// GODEBUG=fips140=only makes them refuse what is not approved, the error
// wraps ErrCipher and the library's error.
func withCipher(k, nonce []byte, size int, s suite, fn func(cipher.AEAD) error) error {
	var err error
	eraseTemporaries(func() {
		aead, state, cerr := newCipher(k, nonce, size, s)
		if cerr != nil {
			err = fmt.Errorf("%w: %w", ErrCipher, cerr)
			return
		}
		defer wipeKeyState(state)
		err = fn(aead)
	})
	return err
}

// newCipher returns the cipher of suite s for an enclave of size bytes,
// and the heap value holding its key state, for wipeKeyState.
func newCipher(k, nonce []byte, size int, s suite) (aead cipher.AEAD, state any, err error) {
	switch {
	case s == suiteApproved:
		return newXAES(k, nonce, true)
	case s != suiteBySize:
		return nil, nil, fmt.Errorf("unknown enclave suite %d", s)
	case useXAES(size):
		return newXAES(k, nonce, false)
	}
	aead, err = chacha20poly1305.NewX(k)
	return aead, aead, err
}

// newXAES returns XAES-256-GCM under key, for nonces that begin with
// nonce[:xaesPrefix]: as all of one enclave's chunk nonces do. It writes
// the derived key over key, which must be protected memory. state is the
// heap value holding the derived key's schedule, for wipeKeyState.
//
// With randomNonces the result is GCM drawing its own nonce for each
// message (cipher.NewGCMWithRandomNonce, the GCM that GODEBUG=fips140=only
// allows): its NonceSize is 0, and each sealed message begins with its
// 12-byte nonce. Otherwise it takes the whole 24-byte XAES nonce.
func newXAES(key, nonce []byte, randomNonces bool) (aead cipher.AEAD, state any, err error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	defer wipeKeyState(block)
	// The key derivation is one CMAC-AES-256 block per half of the key
	// (NIST SP 800-108r1, counter mode), as the C2SP text spells out.
	var k1, m [aes.BlockSize]byte
	block.Encrypt(k1[:], k1[:])
	msb := k1[0] >> 7
	for i := range len(k1) - 1 {
		k1[i] = k1[i]<<1 | k1[i+1]>>7
	}
	k1[len(k1)-1] = k1[len(k1)-1]<<1 ^ msb*0x87
	m[1], m[2] = 1, 'X'
	copy(m[4:], nonce[:xaesPrefix])
	subtle.XORBytes(m[:], m[:], k1[:])
	block.Encrypt(key[:aes.BlockSize], m[:])
	m[1] ^= 1 ^ 2
	block.Encrypt(key[aes.BlockSize:], m[:])

	derived, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	defer wipeKeyState(derived) // the GCM value holds its own copy
	if randomNonces {
		gcm, err := cipher.NewGCMWithRandomNonce(derived)
		if err != nil {
			return nil, nil, err
		}
		return gcm, gcm, nil
	}
	gcm, err := cipher.NewGCM(derived)
	if err != nil {
		return nil, nil, err
	}
	return xaesAEAD{gcm}, gcm, nil
}

// xaesAEAD is AES-256-GCM under a derived key, taking the whole 24-byte
// XAES nonce: the first 12 bytes chose the key, the last 12 are GCM's.
type xaesAEAD struct{ gcm cipher.AEAD }

func (x xaesAEAD) NonceSize() int { return nonceSize }
func (x xaesAEAD) Overhead() int  { return x.gcm.Overhead() }

func (x xaesAEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	return x.gcm.Seal(dst, nonce[xaesPrefix:], plaintext, additionalData)
}

func (x xaesAEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	return x.gcm.Open(dst, nonce[xaesPrefix:], ciphertext, additionalData)
}

// wipeKeyState zeroes the heap value behind state, a pointer a crypto
// package returned, such as x/crypto's copy of the key or crypto/aes's
// key schedule: freed Go memory keeps its contents. A struct holding one
// pointer and nothing else, as crypto/cipher's GCM with random nonces
// wraps its state, stands for that pointer. It zeroes only values without
// pointers, as the ones the library uses are today (zeroing a pointer
// behind the garbage collector's back would corrupt the heap). If a new Go
// or x/crypto adds one, TestNoEnclaveKeyResidue fails.
func wipeKeyState(state any) {
	v := reflect.ValueOf(state)
	if v.Kind() == reflect.Struct && v.NumField() == 1 {
		v = v.Field(0)
	}
	if v.Kind() != reflect.Pointer || !wipeable(v.Type()) {
		return
	}
	if p := v.UnsafePointer(); p != nil {
		wipeBytes(unsafe.Slice((*byte)(p), v.Type().Elem().Size()))
	}
}

var wipeableTypes sync.Map // reflect.Type → bool

// wipeable reports whether t is a pointer to a value without pointers.
func wipeable(t reflect.Type) bool {
	if t == nil || t.Kind() != reflect.Pointer {
		return false
	}
	if ok, seen := wipeableTypes.Load(t); seen {
		return ok.(bool)
	}
	ok := pointerFree(t.Elem())
	wipeableTypes.Store(t, ok)
	return ok
}

func pointerFree(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Array:
		return t.Len() == 0 || pointerFree(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !pointerFree(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}
