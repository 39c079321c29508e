//go:build cgo

package memguard

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
)

// Enclave is a secret encrypted at rest in ordinary memory, under a process
// key held in a Coffer. Open decrypts it back into a frozen Buffer.
//
// The cipher is XChaCha20-Poly1305, or XAES-256-GCM for large secrets on
// CPUs with AES instructions (cipher.go), with a random 192-bit nonce per
// seal, so random nonces never collide in practice. The ciphertext is not
// secret; the key never leaves protected memory except as described on
// Open.
//
// An Enclave is immutable and safe for concurrent use.
type Enclave struct {
	key    *Coffer // the process key it was sealed under
	sealed []byte  // nonce || ciphertext || tag
	size   int
}

// An enclave is sealed in chunks of sealChunk bytes, each its own AEAD
// message, laid out as
//
//	base nonce (24) | plaintext length (8) | chunk 0 | chunk 1 | ...
//
// where each chunk is its ciphertext and tag. Chunk i's nonce is the base
// nonce with i XORed into its last 8 bytes (never into the first 12, which
// choose XAES's derived key), and every chunk's associated data is the
// length: reordered, truncated, extended or spliced chunks fail to
// authenticate.
//
// Chunking bounds each call into the cipher's assembly, which the Go
// runtime cannot preempt, to one chunk's work: a garbage collection
// waiting to scan the goroutine would otherwise stall for the whole
// message, and with it the other goroutines' allocations.
const (
	sealChunk  = 64 << 10
	nonceSize  = chacha20poly1305.NonceSizeX
	tagSize    = chacha20poly1305.Overhead // GCM's tag is as long
	headerSize = nonceSize + 8
)

// sealedSize is the length of an enclave of n plaintext bytes.
func sealedSize(n int) int {
	return headerSize + n + (n+sealChunk-1)/sealChunk*tagSize
}

// chunkNonce returns chunk i's nonce: the base nonce itself for chunk 0, so
// that a one-chunk enclave needs no scratch; later chunks build theirs in
// *scratch, allocated once.
func chunkNonce(base []byte, i int, scratch *[]byte) []byte {
	if i == 0 {
		return base
	}
	if *scratch == nil {
		*scratch = make([]byte, nonceSize)
	}
	nonce := *scratch
	var ctr [8]byte
	binary.BigEndian.PutUint64(ctr[:], uint64(i))
	copy(nonce, base)
	subtle.XORBytes(nonce[nonceSize-8:], nonce[nonceSize-8:], ctr[:])
	return nonce
}

// sealChunks appends the chunks of plaintext to sealed, which holds the
// header and has room for them.
func sealChunks(aead cipher.AEAD, sealed, plaintext []byte) []byte {
	base, length := sealed[:nonceSize], sealed[nonceSize:headerSize]
	var scratch []byte
	for i := 0; len(plaintext) > 0; i++ {
		m := min(sealChunk, len(plaintext))
		sealed = aead.Seal(sealed, chunkNonce(base, i, &scratch), plaintext[:m], length)
		plaintext = plaintext[m:]
	}
	return sealed
}

// wellFormed reports whether sealed has the layout of an enclave of n
// plaintext bytes.
func wellFormed(sealed []byte, n int) bool {
	return len(sealed) == sealedSize(n) && binary.BigEndian.Uint64(sealed[nonceSize:headerSize]) == uint64(n)
}

// openChunks decrypts sealed, which must be wellFormed, straight into dst,
// which must be exactly as long as the plaintext.
func openChunks(aead cipher.AEAD, dst, sealed []byte) error {
	base, length, body := sealed[:nonceSize], sealed[nonceSize:headerSize], sealed[headerSize:]
	var scratch []byte
	for i := 0; len(dst) > 0; i++ {
		m := min(sealChunk, len(dst))
		out, err := aead.Open(dst[:0], chunkNonce(base, i, &scratch), body[:m+tagSize], length)
		if err != nil {
			return ErrDecryption
		}
		if len(out) != m || unsafe.SliceData(out) != unsafe.SliceData(dst) {
			wipeBytes(out)
			return fmt.Errorf("%w: plaintext not decrypted in place", ErrDecryption)
		}
		dst, body = dst[m:], body[m+tagSize:]
	}
	return nil
}

// processKey is the Coffer that seals new enclaves. Purge destroys it, which
// makes every enclave sealed before undecryptable; the next seal makes a
// fresh one.
var processKey struct {
	mu     sync.Mutex
	coffer *Coffer
}

func currentKey() (*Coffer, error) {
	processKey.mu.Lock()
	defer processKey.mu.Unlock()
	if processKey.coffer.Destroyed() {
		c, err := NewCoffer()
		if err != nil {
			return nil, err
		}
		processKey.coffer = c
	}
	return processKey.coffer, nil
}

// NewEnclave encrypts src into a new Enclave, then wipes src. Empty src
// gives ErrInvalidSize. On error src is left as it was. As with
// NewBufferFromBytes, a frozen or compact Buffer's data is sealed and left
// as it is, and a source Purge wiped gives ErrDestroyed.
func NewEnclave(src []byte) (*Enclave, error) {
	e, err := seal(src)
	if err != nil {
		return nil, err
	}
	if err := wipeSource(src); err != nil {
		return nil, err
	}
	return e, nil
}

// NewEnclaveRandom returns an Enclave of size random bytes. The bytes are
// generated in protected memory and sealed from there.
func NewEnclaveRandom(size int) (*Enclave, error) {
	// Mutable: unlike NewBufferRandom's frozen result, it goes to the seal
	// with no protection change.
	b, err := NewBuffer(size)
	if err != nil {
		return nil, err
	}
	err = b.Scramble()
	var e *Enclave
	if err == nil {
		e, err = b.Seal()
	}
	if err != nil {
		b.Destroy() // a failed Seal leaves the Buffer alive
		return nil, err
	}
	return e, nil
}

// Seal encrypts the Buffer into a new Enclave and destroys the Buffer. If
// sealing fails, the Buffer is left alive and unchanged. A broken canary
// gives ErrCanaryCorrupt. If Purge wiped the Buffer while Seal read it,
// Seal returns ErrDestroyed and no Enclave: what was encrypted may have
// been zeros.
func (b *Buffer) Seal() (*Enclave, error) {
	s := b.state()
	if s == nil {
		return nil, ErrDestroyed
	}
	defer runtime.KeepAlive(b)
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.unlock()
	if s.secluded {
		if err := s.protect(protRO); err != nil {
			return nil, s.hideAfter(err)
		}
	}
	if err := s.noteCanary(s.verifyMemory()); err != nil {
		return nil, s.hideAfter(err)
	}
	e, err := seal(s.bytes())
	testPoint("Seal")
	if err != nil && !s.live.Load() {
		// A Purge took the key during the seal, and this Buffer with it.
		err = ErrDestroyed
	}
	if err != nil {
		return nil, s.hideAfter(err)
	}
	// Purge clears live before it wipes a buffer in use, so if live is
	// still set, the data was whole while it was sealed.
	if !s.live.Swap(false) {
		return nil, ErrDestroyed
	}
	b.dropFinalizer()
	s.release()
	return e, nil
}

// seal encrypts plaintext under the current process key.
func seal(plaintext []byte) (*Enclave, error) {
	if len(plaintext) == 0 {
		return nil, sizeError(0)
	}
	// sealed holds the header; the chunks go into its capacity.
	sealed := make([]byte, headerSize, sealedSize(len(plaintext)))
	if err := randomBytes(sealed[:nonceSize]); err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint64(sealed[nonceSize:], uint64(len(plaintext)))
	// A Purge between fetching the key and using it destroys the key: then
	// seal again under the fresh one.
	for attempt := 0; ; attempt++ {
		key, err := currentKey()
		if err != nil {
			return nil, err
		}
		err = key.WithKey(func(k []byte) error {
			return withCipher(k, sealed[:nonceSize], len(plaintext), func(aead cipher.AEAD) error {
				sealChunks(aead, sealed, plaintext)
				return nil
			})
		})
		// As with buffers, a purge marks the coffer before wiping the key:
		// if it is still alive, the key was whole during the seal.
		if err == nil && key.Destroyed() {
			err = ErrCofferDestroyed
		}
		if errors.Is(err, ErrCofferDestroyed) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &Enclave{key: key, sealed: sealed[:cap(sealed)], size: len(plaintext)}, nil
	}
}

// Open decrypts the Enclave into a new frozen Buffer, protected as opts (or
// the defaults, SetDefaultOptions) say; the caller destroys it. The
// plaintext is written straight into protected memory and never passes
// through the Go heap.
//
// If the ciphertext was altered, or the key was lost to Purge, Open returns
// ErrDecryption and nothing is left behind.
//
// Inside the cipher, the key or its schedule is copied into heap values,
// which are wiped after the call, and subkeys (XChaCha's HChaCha20 subkey
// and Poly1305 key, XAES's CMAC subkey) are derived on the goroutine's
// stack. Only a program built with GOEXPERIMENT=runtimesecret (Go 1.26,
// linux/amd64 and arm64) has those erased; otherwise they stay until the
// stack is reused.
func (e *Enclave) Open(opts ...Option) (*Buffer, error) {
	if e == nil || e.size == 0 {
		return nil, fmt.Errorf("%w: %w: nil or zero Enclave, nothing sealed", ErrInvalidArgument, ErrDecryption)
	}
	return decryptToBuffer(e.size, opts, e.openInto)
}

// decryptToBuffer returns a frozen Buffer of size bytes, protected as opts
// say, that fill decrypts into. Only Purge can destroy the new Buffer
// during fill, and it takes the key with it: that is ErrDecryption, never
// a Buffer of zeros.
func decryptToBuffer(size int, opts []Option, fill func([]byte) error) (*Buffer, error) {
	st, err := storageFor(opts)
	if err != nil {
		return nil, err
	}
	b, err := newFrozenBuffer(size, st, fill)
	if errors.Is(err, ErrDestroyed) {
		return nil, fmt.Errorf("%w: purged during Open", ErrDecryption)
	}
	return b, err
}

// openInto decrypts the Enclave into dst, which must be protected memory
// exactly e.size bytes long.
func (e *Enclave) openInto(dst []byte) error {
	if !wellFormed(e.sealed, len(dst)) {
		return ErrDecryption
	}
	err := e.key.WithKey(func(k []byte) error {
		return withCipher(k, e.sealed[:nonceSize], len(dst), func(aead cipher.AEAD) error {
			return openChunks(aead, dst, e.sealed)
		})
	})
	if errors.Is(err, ErrCofferDestroyed) {
		return fmt.Errorf("%w: the key was purged", ErrDecryption)
	}
	return err
}

// Size is the length of the plaintext in bytes.
func (e *Enclave) Size() int {
	if e == nil {
		return 0
	}
	return e.size
}

// String describes the Enclave without its contents.
func (e *Enclave) String() string {
	return fmt.Sprintf("memguard.Enclave(%d bytes)", e.Size())
}
