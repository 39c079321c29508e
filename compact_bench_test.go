package memguard

import (
	"fmt"
	"testing"
)

// BenchmarkCompactNewDestroy is NewBuffer(32, Compact())+Destroy, beside
// the same without the collector's cleanup (runtime.AddCleanup at
// creation, Cleanup.Stop at Destroy), which every Buffer registers so that
// a dropped one is reclaimed: the difference is what the reclaim
// guarantee costs a compact Buffer. Both from 1 and 2 goroutines at once;
// ns/op is wall time over all of them.
func BenchmarkCompactNewDestroy(b *testing.B) {
	st, err := storageFor([]Option{Compact()})
	if err != nil {
		b.Fatal(err)
	}
	variants := []struct {
		name string
		run  func() error
	}{
		{"cleanup", func() error {
			buf, err := NewBuffer(32, Compact())
			if err != nil {
				return err
			}
			return buf.Destroy()
		}},
		{"no-cleanup", func() error {
			s := &bufferState{size: 32}
			if err := s.alloc(32, st); err != nil {
				return err
			}
			s.live.Store(true)
			buffers.add(s)
			return (&Buffer{bufferState: s}).Destroy()
		}},
	}
	for _, v := range variants {
		for _, goroutines := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", v.name, goroutines), func(b *testing.B) {
				b.ReportAllocs()
				runSplit(b, goroutines, v.run)
			})
		}
	}
}

// BenchmarkCompactRead is WithData on a 32-byte compact Buffer beside an
// ordinary one, and the slot's canary check alone.
func BenchmarkCompactRead(b *testing.B) {
	read := func(d []byte) error { benchSink += sum32(d); return nil }
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"ordinary", nil}, {"compact", []Option{Compact()}}} {
		b.Run(tc.name, func(b *testing.B) {
			buf, err := NewBufferRandom(32, tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Destroy()
			for b.Loop() {
				if err := buf.WithData(read); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("slot-check", func(b *testing.B) {
		s, err := allocSlot(32, mapLock)
		if err != nil {
			b.Fatal(err)
		}
		defer s.free()
		for b.Loop() {
			if !s.canaryIntact() {
				b.Fatal("corrupt")
			}
		}
	})
}

var benchSink byte

func sum32(d []byte) byte {
	var s byte
	for _, c := range d {
		s += c
	}
	return s
}
