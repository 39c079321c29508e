package tests

import (
	"runtime"
	"strings"
	"testing"

	"github.com/securememory/memguard"
)

func init() {
	// A caller's own finalizer on a *Buffer it was given.
	children["user-finalizer"] = func() {
		b, err := memguard.NewBuffer(32)
		if err != nil {
			panic(err)
		}
		runtime.SetFinalizer(b, func(b *memguard.Buffer) { b.Destroy() })
		b.Destroy()
	}
}

// A caller may set its own finalizer on a Buffer it holds, as on any
// pointer it was given.
func TestUserFinalizerOnBuffer(t *testing.T) {
	res := runChild(t, "user-finalizer")
	if !strings.Contains(res.stdout, survivedMarker) {
		t.Fatalf("child died (exit %d, signal %v):\n%s", res.exitCode, res.signal, tail(res.stderr))
	}
}
