// Package benchmarks measures memguard against github.com/awnumar/memguard
// (the peer) side by side, in one process, on the operations the project
// sets targets for (docs/DESIGN.md).
package benchmarks

import (
	"crypto/cipher"
	"crypto/rand"
	"sync"
	"testing"

	peer "github.com/awnumar/memguard"
	"github.com/securememory/memguard"
	"golang.org/x/crypto/nacl/secretbox"
)

// Op is one row of the comparison: the same work done by both libraries.
type Op struct {
	Name string
	// Target is the minimum peer time / our time.
	Target float64
	// Bytes, if set, is the payload per operation, for a throughput column.
	Bytes int64
	// MinGBps, if set, is the least throughput of ours the target also
	// asks for, in GB/s of Bytes.
	MinGBps    float64
	Ours, Peer func(b *testing.B)
	// Floor, if set, is the work any implementation of the contract must
	// do (floors.go): peer time / floor time bounds the reachable ratio.
	Floor func(b *testing.B)
}

const mib = 1 << 20

// Ops are the compared operations, each with its target ratio.
var Ops = []Op{
	{Name: "NewBuffer(32)+Destroy", Target: 30, Ours: oursNewDestroy, Peer: peerNewDestroy},
	{Name: "1000 live NewBuffer(32), destroy all", Target: 1.5, Ours: oursThousand, Peer: peerThousand},
	{Name: "WithData read 32 B vs Bytes()", Target: 0.67, Ours: oursRead, Peer: peerRead, Floor: readFloor},
	{Name: "Freeze+Melt", Target: 1.5, Ours: oursFreezeMelt, Peer: peerFreezeMelt},
	{Name: "NewEnclave(32 B)", Target: 20, Ours: oursSeal(32), Peer: peerSeal(32), Floor: sealFloor(32)},
	{Name: "Open+Destroy(32 B)", Target: 20, Ours: oursOpen(32), Peer: peerOpen(32), Floor: openFloor(32)},
	{Name: "NewEnclave(1 MiB)", Target: 4, Bytes: mib, MinGBps: 2, Ours: oursSeal(mib), Peer: peerSeal(mib), Floor: sealFloor(mib)},
	{Name: "Open+Destroy(1 MiB)", Target: 4, Bytes: mib, MinGBps: 2, Ours: oursOpen(mib), Peer: peerOpen(mib), Floor: openFloor(mib)},
	{Name: "Purge with 1000 live buffers", Target: 2, Ours: OursPurge(1000), Peer: peerPurge},
	// Compact() against the peer's ordinary NewBuffer: what a small secret
	// costs in each library at its cheapest.
	{Name: "NewBuffer(32, Compact())+Destroy vs NewBuffer(32)+Destroy", Target: 200, Ours: newDestroy(memguard.Compact()), Peer: peerNewDestroy},
}

// References are plain-Go baselines, measured once each.
var References = []struct {
	Name  string
	Bytes int64
	Run   func(b *testing.B)
}{
	{"[]byte read 32 B", 0, plainRead},
	{"RWMutex RLock+RUnlock", 0, readerCount},
	{"mprotect PROT_READ, then PROT_NONE, of a locked page (raw)", 0, revealHide},
	{"XChaCha20-Poly1305 seal 1 MiB", mib, aeadSeal(newXChaCha)},
	{"XChaCha20-Poly1305 open 1 MiB", mib, aeadOpen(newXChaCha)},
	{"AES-256-GCM seal 1 MiB", mib, aeadSeal(newAESGCM)},
	{"AES-256-GCM open 1 MiB", mib, aeadOpen(newAESGCM)},
	{"XSalsa20-Poly1305 seal 1 MiB (peer's cipher)", mib, secretboxSeal},
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func oursNewDestroy(b *testing.B) {
	for b.Loop() {
		buf, err := memguard.NewBuffer(32)
		must(err)
		must(buf.Destroy())
	}
}

func peerNewDestroy(b *testing.B) {
	for b.Loop() {
		peer.NewBuffer(32).Destroy()
	}
}

func oursThousand(b *testing.B) {
	bufs := make([]*memguard.Buffer, 1000)
	for b.Loop() {
		for i := range bufs {
			var err error
			bufs[i], err = memguard.NewBuffer(32)
			must(err)
		}
		for _, buf := range bufs {
			must(buf.Destroy())
		}
	}
}

func peerThousand(b *testing.B) {
	bufs := make([]*peer.LockedBuffer, 1000)
	for b.Loop() {
		for i := range bufs {
			bufs[i] = peer.NewBuffer(32)
		}
		for _, buf := range bufs {
			buf.Destroy()
		}
	}
}

// Sink keeps the compiler from dropping the reads being measured.
var Sink byte

func sum(d []byte) byte {
	var s byte
	for _, c := range d {
		s += c
	}
	return s
}

func oursRead(b *testing.B) {
	buf, err := memguard.NewBufferRandom(32)
	must(err)
	defer buf.Destroy()
	read := func(d []byte) error { Sink += sum(d); return nil }
	for b.Loop() {
		must(buf.WithData(read))
	}
}

func peerRead(b *testing.B) {
	buf := peer.NewBufferRandom(32)
	defer buf.Destroy()
	for b.Loop() {
		Sink += sum(buf.Bytes())
	}
}

func plainRead(b *testing.B) {
	buf := make([]byte, 32)
	rand.Read(buf)
	for b.Loop() {
		Sink += sum(buf)
	}
}

// readerCount is the cost of announcing a reader and leaving, alone: two
// atomic read-modify-writes, which no reader count in Go can avoid.
func readerCount(b *testing.B) {
	var mu sync.RWMutex
	for b.Loop() {
		mu.RLock()
		mu.RUnlock() //lint:ignore SA2001 the empty section is what is measured
	}
}

func oursFreezeMelt(b *testing.B) {
	buf, err := memguard.NewBuffer(32)
	must(err)
	defer buf.Destroy()
	for b.Loop() {
		must(buf.Freeze())
		must(buf.Melt())
	}
}

func peerFreezeMelt(b *testing.B) {
	buf := peer.NewBuffer(32)
	defer buf.Destroy()
	for b.Loop() {
		buf.Freeze()
		buf.Melt()
	}
}

// Both libraries wipe the source of a new enclave, so after the first
// iteration they seal zeros: the same work for the cipher, whose speed does
// not depend on the data. Refilling it would need StopTimer, whose
// ReadMemStats stops the world and adds the same cost to both sides.

func oursSeal(size int) func(b *testing.B) {
	return func(b *testing.B) {
		src := make([]byte, size)
		rand.Read(src)
		b.SetBytes(int64(size))
		for b.Loop() {
			_, err := memguard.NewEnclave(src)
			must(err)
		}
	}
}

func peerSeal(size int) func(b *testing.B) {
	return func(b *testing.B) {
		src := make([]byte, size)
		rand.Read(src)
		b.SetBytes(int64(size))
		for b.Loop() {
			peer.NewEnclave(src)
		}
	}
}

func oursOpen(size int) func(b *testing.B) {
	return func(b *testing.B) {
		e, err := memguard.NewEnclaveRandom(size)
		must(err)
		b.SetBytes(int64(size))
		for b.Loop() {
			buf, err := e.Open()
			must(err)
			must(buf.Destroy())
		}
	}
}

func peerOpen(size int) func(b *testing.B) {
	return func(b *testing.B) {
		e := peer.NewEnclaveRandom(size)
		b.SetBytes(int64(size))
		for b.Loop() {
			buf, err := e.Open()
			must(err)
			buf.Destroy()
		}
	}
}

// OursPurge times a Purge of n live buffers; make bench runs it for two
// values of n to show that Purge's cost per buffer does not grow with n.
func OursPurge(n int) func(b *testing.B) {
	return func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			for i := 0; i < n; i++ {
				_, err := memguard.NewBuffer(32)
				must(err)
			}
			b.StartTimer()
			memguard.Purge()
		}
	}
}

func peerPurge(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		for i := 0; i < 1000; i++ {
			peer.NewBuffer(32)
		}
		b.StartTimer()
		peer.Purge()
	}
}

// aeadSeal and aeadOpen time one of the enclaves' ciphers alone, on 1 MiB:
// XChaCha20-Poly1305 for small enclaves, AES-256-GCM (XAES-256-GCM once it
// has derived its key) for large ones.
func aeadSeal(newAEAD func() cipher.AEAD) func(b *testing.B) {
	return func(b *testing.B) {
		aead := newAEAD()
		nonce := make([]byte, aead.NonceSize())
		sealWith(b, aead.Overhead(), func(dst, plain []byte) []byte {
			return aead.Seal(dst, nonce, plain, nil)
		})
	}
}

func aeadOpen(newAEAD func() cipher.AEAD) func(b *testing.B) {
	return func(b *testing.B) {
		aead := newAEAD()
		nonce := make([]byte, aead.NonceSize())
		sealed := aead.Seal(nil, nonce, make([]byte, mib), nil)
		out := make([]byte, 0, mib)
		b.SetBytes(mib)
		for b.Loop() {
			var err error
			out, err = aead.Open(out[:0], nonce, sealed, nil)
			must(err)
		}
	}
}

// secretboxSeal is the peer's cipher alone. Its time over AES-256-GCM's is
// about the best NewEnclave(1 MiB) ratio left once neither library
// allocates or collects garbage.
func secretboxSeal(b *testing.B) {
	var key [32]byte
	var nonce [24]byte
	sealWith(b, secretbox.Overhead, func(dst, plain []byte) []byte {
		return secretbox.Seal(dst, plain, &nonce, &key)
	})
}

// sealWith times seal of 1 MiB into a reused slice.
func sealWith(b *testing.B, overhead int, seal func(dst, plain []byte) []byte) {
	plain := make([]byte, mib)
	out := make([]byte, 0, mib+overhead)
	b.SetBytes(mib)
	for b.Loop() {
		out = seal(out[:0], plain)
	}
}
