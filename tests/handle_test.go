package tests

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/securememory/memguard"
)

// waitReclaimed collects garbage until Stats().Reclaimed reaches want, or
// a few seconds pass; then a few collections more, so that the cleanups
// queued with the last one have run.
func waitReclaimed(want int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for memguard.Stats().Reclaimed < want {
		if time.Now().After(deadline) {
			return false
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	for range 5 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func init() {
	// A handle reset to the zero Buffer, which go vet accepts and the
	// package documents as behaving as destroyed, then dropped: its
	// reclaim must not dereference the missing state.
	children["zeroed-handle"] = func() {
		before := memguard.Stats().Reclaimed
		b, err := memguard.NewBuffer(32)
		if err != nil {
			panic(err)
		}
		*b = memguard.Buffer{}
		if b.Alive() || b.Destroy() != nil {
			panic("a zero Buffer is not destroyed")
		}
		// A second Buffer, dropped as is, shows when cleanups have run.
		if _, err := memguard.NewBuffer(32); err != nil {
			panic(err)
		}
		if !waitReclaimed(before + 1) {
			panic("the dropped Buffer was never reclaimed")
		}
	}

	// The same, but the question is whether the secret is ever freed:
	// the package says a Buffer that becomes unreachable without Destroy
	// is wiped and freed by the collector, and nothing reaches this one's
	// state any more.
	children["zeroed-handle-leak"] = func() {
		base := memguard.Stats()
		b, err := memguard.NewBuffer(32)
		if err != nil {
			panic(err)
		}
		*b = memguard.Buffer{}
		if _, err := memguard.NewBuffer(32); err != nil {
			panic(err)
		}
		if !waitReclaimed(base.Reclaimed + 1) {
			panic("the dropped Buffer was never reclaimed")
		}
		if live := memguard.Stats().LiveBuffers; live != base.LiveBuffers {
			println("LiveBuffers", live, "after", base.LiveBuffers)
			panic("the zeroed handle's secret is never freed")
		}
	}

	// A copy of a handle lands, after the original was reclaimed and its
	// memory reused, at the original's address, inside an array of
	// Buffers (not at the start of its heap object). Its Destroy must not
	// take it for the original and clear a finalizer through an interior
	// pointer, which the runtime answers with a fatal error.
	children["copy-at-reused-address"] = func() {
		const n = 1 << 15
		copies := make([]memguard.Buffer, n)
		where := make(map[uintptr]int, n)
		before := memguard.Stats().Reclaimed
		for i := range copies {
			b, err := memguard.NewBuffer(1, memguard.Compact())
			if err != nil {
				panic(err)
			}
			where[uintptr(unsafe.Pointer(b))] = i
			// copies[i] = *b, which go vet would report.
			reflect.ValueOf(&copies[i]).Elem().Set(reflect.ValueOf(b).Elem())
		}
		if !waitReclaimed(before + n) {
			panic("the originals were not reclaimed")
		}
		// Their memory is free now, and arrays of Buffers take it back:
		// arrays of at most 512 bytes, which start their heap objects
		// (larger ones follow a header) at multiples of 512 in a page,
		// where every third one is in step with the 24-byte handles
		// the page held before.
		const perArray = 512 / unsafe.Sizeof(memguard.Buffer{})
		keep := make([][]memguard.Buffer, 0, 1<<17) // holds each array, so the next takes new memory
		for range 1 << 17 {
			arr := make([]memguard.Buffer, perArray)
			keep = append(keep, arr)
			runtime.KeepAlive(keep)
			for j := 1; j < len(arr); j++ {
				i, ok := where[uintptr(unsafe.Pointer(&arr[j]))]
				if !ok {
					continue
				}
				reflect.ValueOf(&arr[j]).Elem().Set(reflect.ValueOf(&copies[i]).Elem())
				arr[j].Destroy()
				println("destroyed a copy at its original's address")
				return
			}
		}
		println("no original's address was reused: inconclusive")
	}
}

// Resetting a handle to the zero Buffer and dropping it does not crash
// the process from the collector's reclaim of it.
func TestZeroedHandleDropped(t *testing.T) {
	res := runChild(t, "zeroed-handle")
	if !strings.Contains(res.stdout, survivedMarker) {
		t.Fatalf("child died (exit %d, signal %v):\n%s", res.exitCode, res.signal, tail(res.stderr))
	}
}

// A Buffer whose handle was reset to the zero Buffer and dropped is
// freed, as any dropped Buffer is: its secret does not stay in locked
// memory until a Purge.
func TestZeroedHandleFreed(t *testing.T) {
	res := runChild(t, "zeroed-handle-leak")
	if !strings.Contains(res.stdout, survivedMarker) {
		t.Fatalf("child died (exit %d, signal %v):\n%s", res.exitCode, res.signal, tail(res.stderr))
	}
}

// Destroy through a copy of a handle never makes the runtime throw, also
// when the copy sits where the original was.
func TestCopyAtReusedAddressDestroy(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 32k Buffers")
	}
	res := runChild(t, "copy-at-reused-address")
	if !strings.Contains(res.stdout, survivedMarker) {
		t.Fatalf("child died (exit %d, signal %v):\n%s", res.exitCode, res.signal, tail(res.stderr))
	}
	if strings.Contains(res.stderr, "inconclusive") {
		t.Skip("no address was reused")
	}
}

// tail is the first lines of s, where the error is.
func tail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[:min(len(lines), 12)], "\n")
}
