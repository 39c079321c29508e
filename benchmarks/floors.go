package benchmarks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/unix"
)

// The floors below are the work that any implementation of an operation's
// contract must do, written in plain Go and system calls with nothing else
// around them. The peer's time over a floor is the best ratio anyone could
// reach on this machine: where it is under the target, the target cannot
// be met here.

// readFloor is what WithData cannot avoid: Destroy must wait for readers,
// so each one announces itself and leaves (sync.RWMutex is the cheapest
// way: one atomic add each), and leaves even if the caller's function
// panics (a deferred unlock, in a call of its own, since Go inlines no
// function that defers); a destroyed buffer must be refused; and the
// canary next to the data is compared on every access (docs/DESIGN.md,
// Memory layouts), before the caller's function reads the data.
func readFloor(b *testing.B) {
	var mu sync.RWMutex
	var dead atomic.Bool
	mem := make([]byte, 16+32)
	rand.Read(mem)
	canary := [16]byte(mem)
	read := func(d []byte) error { Sink += sum(d); return nil }
	withData := func(fn func([]byte) error) error {
		mu.RLock()
		defer mu.RUnlock()
		if dead.Load() || [16]byte(mem) != canary {
			return errRefused
		}
		return fn(mem[16:])
	}
	for b.Loop() {
		must(withData(read))
	}
}

var errRefused = errors.New("destroyed or corrupt")

// sealFloor is what NewEnclave cannot avoid: a random nonce, a new heap
// slice for the ciphertext (an Enclave lives in ordinary memory), the
// cipher (floorAEAD), sealing in 64 KiB chunks as we do (faster than one
// call: a garbage collection need not wait for one long assembly routine),
// and wiping the source.
func sealFloor(size int) func(b *testing.B) {
	return func(b *testing.B) {
		aead, nonce := floorAEAD(size)
		src := make([]byte, size)
		rand.Read(src)
		b.SetBytes(int64(size))
		for b.Loop() {
			rand.Read(nonce)
			out := make([]byte, 0, size+(size+chunk-1)/chunk*chacha20poly1305.Overhead)
			for p := src; len(p) > 0; {
				m := min(chunk, len(p))
				out = aead.Seal(out, nonce, p[:m], nil)
				p = p[m:]
			}
			clear(src)
			// Dropped at once, as the NewEnclave rows drop their enclaves:
			// keeping the last one would enlarge the live heap and so
			// space out garbage collections.
			Sink += out[len(out)-1]
		}
	}
}

const chunk = 64 << 10

// openFloor is what Open followed by Destroy cannot avoid: decrypt into a
// locked page, make it read-only (Open returns a frozen buffer), make it
// writable again and wipe it (Destroy). The page is set up the cheapest way
// for mprotect: between two PROT_NONE pages, locked on fault (a page with
// writable neighbours, or locked with plain mlock, costs more per pair).
func openFloor(size int) func(b *testing.B) {
	return func(b *testing.B) {
		aead, nonce := floorAEAD(size)
		sealed := aead.Seal(nil, nonce, make([]byte, size), nil)
		page := unix.Getpagesize()
		n := (size + page - 1) / page * page
		whole, err := unix.Mmap(-1, 0, n+2*page, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		must(err)
		defer unix.Munmap(whole)
		mem := whole[page : page+n]
		must(unix.Mprotect(mem, unix.PROT_READ|unix.PROT_WRITE))
		_, _, errno := unix.Syscall(unix.SYS_MLOCK2, uintptr(unsafe.Pointer(&mem[0])), uintptr(n), unix.MLOCK_ONFAULT)
		if errno != 0 {
			b.Fatal(errno)
		}
		b.SetBytes(int64(size))
		for b.Loop() {
			_, err := aead.Open(mem[:0], nonce, sealed, nil)
			must(err)
			must(rawMprotect(mem, unix.PROT_READ))
			must(rawMprotect(mem, unix.PROT_READ|unix.PROT_WRITE))
			clear(mem[:size])
		}
	}
}

// revealHide is the two protection changes a NoAccessWhenIdle read cannot
// avoid: the page made readable, then inaccessible again, which, when
// another thread of the process last ran on the other CPU, takes a TLB
// shootdown.
func revealHide(b *testing.B) {
	page := unix.Getpagesize()
	whole, err := unix.Mmap(-1, 0, 3*page, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	must(err)
	defer unix.Munmap(whole)
	mem := whole[page : 2*page]
	must(unix.Mprotect(mem, unix.PROT_READ|unix.PROT_WRITE))
	must(unix.Mlock(mem))
	mem[0] = 1
	for b.Loop() {
		must(rawMprotect(mem, unix.PROT_READ))
		Sink += mem[0]
		must(rawMprotect(mem, unix.PROT_NONE))
	}
}

// rawMprotect is mprotect as a raw system call, the cheapest way to make
// one from Go: unix.Mprotect tells the scheduler, which in a loop of them
// costs 0.25 us a call more (see region.protect in the root package).
func rawMprotect(b []byte, prot int) error {
	_, _, errno := unix.RawSyscall(unix.SYS_MPROTECT, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(prot))
	if errno != 0 {
		return errno
	}
	return nil
}

// floorAEAD is the cipher an enclave of size bytes uses on a CPU with AES
// instructions, and a nonce for it: XChaCha20-Poly1305, or from 4 KiB up
// (xaesMinSize in the root's cipher.go) AES-256-GCM, which XAES-256-GCM is
// once it has derived its key. The floor leaves out that derivation, a
// few AES blocks, small next to any open.
func floorAEAD(size int) (aead cipher.AEAD, nonce []byte) {
	if size < 4<<10 {
		aead = newXChaCha()
	} else {
		aead = newAESGCM()
	}
	return aead, make([]byte, aead.NonceSize())
}

// newXChaCha and newAESGCM return the enclaves' ciphers under a random key.
func newXChaCha() cipher.AEAD {
	aead, err := chacha20poly1305.NewX(randomKey())
	must(err)
	return aead
}

func newAESGCM() cipher.AEAD {
	block, err := aes.NewCipher(randomKey())
	must(err)
	aead, err := cipher.NewGCM(block)
	must(err)
	return aead
}

func randomKey() []byte {
	key := make([]byte, 32)
	rand.Read(key)
	return key
}
