package benchmarks

import (
	"sync"
	"testing"

	"github.com/securememory/memguard"
)

// OptionOp is one row of the options table: an operation on a Buffer made
// with an option, against the same operation on an ordinary Buffer in the
// same run. Its targets are against our own ordinary row, not the peer,
// which has no such options.
type OptionOp struct {
	Name string
	// MaxRatio, if set, is the most option time / ordinary time allowed.
	MaxRatio float64
	// MaxNs, if set, is the most time per operation allowed, in ns.
	MaxNs float64
	// A row with neither target is reported only.
	Option, Ordinary func(b *testing.B)
}

// OptionOps are the rows of the options table (docs/DESIGN.md, Targets).
var OptionOps = []OptionOp{
	{Name: "NewBuffer(32)+Destroy, SecretMemory(), cached", MaxRatio: 1.5,
		Option: newDestroy(memguard.SecretMemory()), Ordinary: oursNewDestroy},
	{Name: "NewBuffer(32)+Destroy, SecretMemory(), cold (no cache)",
		Option: coldNewDestroy(memguard.SecretMemory()), Ordinary: coldNewDestroy()},
	{Name: "WithData read 32 B, NoAccessWhenIdle()", MaxNs: 4000,
		Option: readWith(memguard.NoAccessWhenIdle()), Ordinary: oursRead},
	{Name: "Open+Destroy(32 B), SecretMemory()", MaxRatio: 1.5,
		Option: openWith(32, memguard.SecretMemory()), Ordinary: oursOpen(32)},
	{Name: "Open+Destroy(64 B), Compact()", MaxRatio: 0.5,
		Option: openWith(64, memguard.Compact()), Ordinary: oursOpen(64)},
	{Name: "WithData read 32 B, Compact()", MaxRatio: 1.1,
		Option: readAcross(memguard.Compact()), Ordinary: readAcross()},
	// Reported: wall time per operation with 2 goroutines allocating at
	// once, against 1; near 0.5× where they do not wait for each other.
	{Name: "NewBuffer(32, Compact())+Destroy, 2 goroutines vs 1 (wall time per op)",
		Option: concurrentNewDestroy(2, memguard.Compact()), Ordinary: concurrentNewDestroy(1, memguard.Compact())},
}

func newDestroy(opts ...memguard.Option) func(b *testing.B) {
	return func(b *testing.B) {
		for b.Loop() {
			buf, err := memguard.NewBuffer(32, opts...)
			must(err)
			must(buf.Destroy())
		}
	}
}

// coldNewDestroy is newDestroy with every allocation mapped afresh and
// every Destroy unmapped: the region cache, whose room is counted in
// regions whatever their class, is emptied (Purge) and filled with regions
// of the other class, which never serve these. Purge empties it again
// afterwards.
func coldNewDestroy(opts ...memguard.Option) func(b *testing.B) {
	return func(b *testing.B) {
		memguard.Purge()
		filler := []memguard.Option{memguard.SecretMemory()}
		if len(opts) > 0 {
			filler = []memguard.Option{memguard.AllowFallback()} // ordinary pages
		}
		fill := make([]*memguard.Buffer, 256) // the cache's bound in regions
		for i := range fill {
			var err error
			fill[i], err = memguard.NewBuffer(32, filler...)
			must(err)
		}
		for _, buf := range fill {
			must(buf.Destroy())
		}
		defer memguard.Purge()
		newDestroy(opts...)(b)
	}
}

func readWith(opts ...memguard.Option) func(b *testing.B) {
	return func(b *testing.B) {
		buf, err := memguard.NewBufferRandom(32, opts...)
		must(err)
		defer buf.Destroy()
		read := func(d []byte) error { Sink += sum(d); return nil }
		for b.Loop() {
			must(buf.WithData(read))
		}
	}
}

// readAcross is readWith over several Buffers read in turn. A single
// read's time moves by a few nanoseconds with where its secret lies (a
// compact slot anywhere in a chunk, a region's data at the end of its
// page) relative to the loop's other memory; reading 8 Buffers in turn
// compares the two kinds of Buffer rather than two addresses.
func readAcross(opts ...memguard.Option) func(b *testing.B) {
	return func(b *testing.B) {
		var bufs [8]*memguard.Buffer
		for i := range bufs {
			var err error
			bufs[i], err = memguard.NewBufferRandom(32, opts...)
			must(err)
			defer bufs[i].Destroy()
		}
		read := func(d []byte) error { Sink += sum(d); return nil }
		i := 0
		for b.Loop() {
			must(bufs[i%len(bufs)].WithData(read))
			i++
		}
	}
}

func openWith(size int, opts ...memguard.Option) func(b *testing.B) {
	return func(b *testing.B) {
		e, err := memguard.NewEnclaveRandom(size)
		must(err)
		for b.Loop() {
			buf, err := e.Open(opts...)
			must(err)
			must(buf.Destroy())
		}
	}
}

// concurrentNewDestroy is newDestroy split over goroutines running at
// once; ns/op is wall time over all of them.
func concurrentNewDestroy(goroutines int, opts ...memguard.Option) func(b *testing.B) {
	return func(b *testing.B) {
		var wg sync.WaitGroup
		for g := range goroutines {
			n := b.N / goroutines
			if g == 0 {
				n += b.N % goroutines
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					buf, err := memguard.NewBuffer(32, opts...)
					must(err)
					must(buf.Destroy())
				}
			}()
		}
		wg.Wait()
	}
}
