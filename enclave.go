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
// In FIPS 140-3 mode (GODEBUG=fips140=on or only) every enclave uses only
// approved algorithms: XAES-256-GCM at every size, whose key derivation is
// NIST SP 800-108r1's counter-mode KDF with CMAC-AES-256, and AES-256-GCM
// with its nonces drawn by Go's FIPS module. The mode is fixed for the
// life of the process, and enclaves live only in its memory, so each
// process has one format. Without AES instructions Go's AES is slower and
// not constant-time; FIPS mode uses it all the same. The process key
// comes from the kernel's random source (getrandom, or getentropy on
// macOS), the source Go's FIPS module seeds its own generator from, and
// enters the cipher as a key the module imports. If Go refuses the cipher
// all the same, calls fail with ErrCipher.
//
// An Enclave is immutable and safe for concurrent use.
type Enclave struct {
	key    *Coffer // the process key it was sealed under
	sealed []byte  // header || chunks, as laid out below
	size   int
	suite  suite // how it was sealed (cipher.go)
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
// In suiteApproved, GCM draws each chunk's 12-byte nonce itself and the
// chunk begins with it; the first 12 bytes of the base nonce still choose
// the derived key, and a chunk's associated data is the whole header
// followed by the chunk's index (8 bytes, big-endian): the index binds its
// place, and no bit of the header goes unauthenticated.
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

// sealedSize is the length of an enclave of n plaintext bytes sealed
// with suite s.
func sealedSize(n int, s suite) int {
	return headerSize + n + (n+sealChunk-1)/sealChunk*s.overhead()
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

// chunkInputs returns chunk i's nonce and associated data for aead, given
// the enclave's header. An aead that draws its own nonces (NonceSize 0,
// suiteApproved) gets none, and its associated data, built in *ad and
// allocated once, is the header and the index; otherwise the nonce binds
// the index (chunkNonce) and the associated data is the length.
func chunkInputs(aead cipher.AEAD, header []byte, i int, scratch, ad *[]byte) (nonce, data []byte) {
	if aead.NonceSize() != 0 {
		return chunkNonce(header[:nonceSize], i, scratch), header[nonceSize:headerSize]
	}
	if *ad == nil {
		*ad = make([]byte, headerSize+8)
		copy(*ad, header)
	}
	binary.BigEndian.PutUint64((*ad)[headerSize:], uint64(i))
	return nil, *ad
}

// sealChunks appends the chunks of plaintext to sealed, which holds the
// header and has room for them.
func sealChunks(aead cipher.AEAD, sealed, plaintext []byte) []byte {
	header := sealed[:headerSize]
	var scratch, ad []byte
	for i := 0; len(plaintext) > 0; i++ {
		m := min(sealChunk, len(plaintext))
		nonce, data := chunkInputs(aead, header, i, &scratch, &ad)
		sealed = aead.Seal(sealed, nonce, plaintext[:m], data)
		plaintext = plaintext[m:]
	}
	return sealed
}

// wellFormed reports whether sealed has the layout of an enclave of n
// plaintext bytes sealed with suite s.
func wellFormed(sealed []byte, n int, s suite) bool {
	return len(sealed) == sealedSize(n, s) && binary.BigEndian.Uint64(sealed[nonceSize:headerSize]) == uint64(n)
}

// openChunks decrypts sealed, which must be wellFormed for aead's suite,
// straight into dst, which must be exactly as long as the plaintext.
func openChunks(aead cipher.AEAD, dst, sealed []byte) error {
	header, body := sealed[:headerSize], sealed[headerSize:]
	overhead := aead.Overhead()
	var scratch, ad []byte
	for i := 0; len(dst) > 0; i++ {
		m := min(sealChunk, len(dst))
		nonce, data := chunkInputs(aead, header, i, &scratch, &ad)
		out, err := aead.Open(dst[:0], nonce, body[:m+overhead], data)
		if err != nil {
			return ErrDecryption
		}
		if len(out) != m || unsafe.SliceData(out) != unsafe.SliceData(dst) {
			wipeBytes(out)
			return fmt.Errorf("%w: plaintext not decrypted in place", ErrDecryption)
		}
		dst, body = dst[m:], body[m+overhead:]
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
	e, err := seal(src, sealingSuite())
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
	e, err := seal(s.bytes(), sealingSuite())
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
	s.release()
	return e, nil
}

// seal encrypts plaintext under the current process key with suite s.
func seal(plaintext []byte, s suite) (*Enclave, error) {
	if len(plaintext) == 0 {
		return nil, sizeError(0)
	}
	// sealed holds the header; the chunks go into its capacity.
	sealed := make([]byte, headerSize, sealedSize(len(plaintext), s))
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
			return withCipher(k, sealed[:nonceSize], len(plaintext), s, func(aead cipher.AEAD) error {
				sealChunks(aead, sealed, plaintext)
				return nil
			})
		})
		testPoint("sealed")
		// As with buffers, a purge marks the coffer before wiping the key:
		// if it is still alive, the key was whole during the seal.
		if err == nil && key.Destroyed() {
			err = ErrCofferDestroyed
		}
		if errors.Is(err, ErrCofferDestroyed) {
			if attempt < 3 {
				continue
			}
			// Purges keep taking the key: report it as any call that
			// Purge cut short.
			return nil, fmt.Errorf("%w: the key was purged during every attempt to seal: %w", ErrDestroyed, err)
		}
		if err != nil {
			return nil, err
		}
		return &Enclave{key: key, sealed: sealed[:cap(sealed)], size: len(plaintext), suite: s}, nil
	}
}

// Open decrypts the Enclave into a new frozen Buffer, protected as opts (or
// the defaults, SetDefaultOptions) say; the caller destroys it. The
// plaintext is written straight into protected memory and never passes
// through the Go heap.
//
// If the ciphertext was altered, or the key was lost to Purge, Open returns
// ErrDecryption and nothing is left behind; if Go refused the cipher, the
// error wraps ErrCipher as well.
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

// WithData opens the Enclave into a frozen Buffer, protected as opts (or
// the defaults) say, calls fn with its data, and destroys the Buffer: Open,
// WithData and Destroy in one call, the Buffer destroyed even if fn
// panics. fn must not keep the slice or write to it.
//
// It returns Open's error, and fn is not called; or fn's error; or else
// the Buffer's: ErrDestroyed if Purge wiped the data while fn ran (what fn
// saw may have been zeros), ErrCanaryCorrupt if a canary was found broken.
// A nil fn or Enclave gives ErrInvalidArgument.
func (e *Enclave) WithData(fn func(data []byte) error, opts ...Option) (err error) {
	if fn == nil {
		return fmt.Errorf("%w: nil callback", ErrInvalidArgument)
	}
	b, err := e.Open(opts...)
	if err != nil {
		return err
	}
	defer func() {
		if derr := b.Destroy(); err == nil {
			err = derr
		}
	}()
	return b.WithData(fn)
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
	if !wellFormed(e.sealed, len(dst), e.suite) {
		return ErrDecryption
	}
	err := e.key.WithKey(func(k []byte) error {
		return withCipher(k, e.sealed[:nonceSize], len(dst), e.suite, func(aead cipher.AEAD) error {
			return openChunks(aead, dst, e.sealed)
		})
	})
	switch {
	case errors.Is(err, ErrCofferDestroyed):
		return fmt.Errorf("%w: the key was purged", ErrDecryption)
	case errors.Is(err, ErrCipher):
		return fmt.Errorf("%w: %w", ErrDecryption, err)
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
