package memguard

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkCompactNewDestroy is NewBuffer(32, Compact())+Destroy, beside
// the same with the collector's reclaim cleanup added at creation and
// stopped at Destroy: what each Buffer would pay if its handle did not
// wait among the young ones (reclaim.go), which a Buffer destroyed before
// the next sweep never leaves. Both from 1 and 2 goroutines at once; ns/op
// is wall time over all of them.
func BenchmarkCompactNewDestroy(b *testing.B) {
	variants := []struct {
		name    string
		cleanup bool
	}{{"young", false}, {"cleanup-at-creation", true}}
	for _, v := range variants {
		run := func() error {
			buf, err := NewBuffer(32, Compact())
			if err != nil {
				return err
			}
			if v.cleanup {
				c := runtime.AddCleanup(buf, reclaimBuffer, buf.bufferState)
				defer c.Stop()
			}
			return buf.Destroy()
		}
		for _, goroutines := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", v.name, goroutines), func(b *testing.B) {
				b.ReportAllocs()
				runSplit(b, goroutines, run)
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
