package tests

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var pageSize = uintptr(os.Getpagesize())

// pokeAt announces the address, then writes one byte there. The parent
// checks that the fault the Go runtime reports is at exactly that address.
func pokeAt(p unsafe.Pointer) {
	fmt.Printf("poke=%#x\n", uintptr(p))
	os.Stdout.Sync()
	*(*byte)(p) = 0x41
}

func dataPtr(b *memguard.Buffer) unsafe.Pointer {
	var p unsafe.Pointer
	_ = b.WithData(func(d []byte) error {
		p = unsafe.Pointer(unsafe.SliceData(d))
		return nil
	})
	return p
}

func dataAddr(b *memguard.Buffer) uintptr { return uintptr(dataPtr(b)) }

func mustBuffer(size int) *memguard.Buffer {
	b, err := memguard.NewBuffer(size)
	if err != nil {
		panic(err)
	}
	return b
}

// meltedBuffer is a Buffer made frozen, then melted.
func meltedBuffer() *memguard.Buffer {
	b, err := memguard.NewBufferFromBytes([]byte("frozen secret"))
	if err != nil {
		panic(err)
	}
	if err := b.Melt(); err != nil {
		panic(err)
	}
	return b
}

func init() {
	children["overflow into guard page"] = func() {
		b := mustBuffer(32) // a multiple of 16: no tail canary, the guard page follows
		pokeAt(unsafe.Add(dataPtr(b), 32))
	}
	children["underflow into guard page"] = func() {
		b := mustBuffer(32)
		p := dataPtr(b)
		intoPage := int(uintptr(p) & (pageSize - 1)) // a 32-byte secret: no canary page before
		pokeAt(unsafe.Add(p, -intoPage-1))
	}
	children["write to frozen buffer"] = func() {
		b, err := memguard.NewBufferFromBytes([]byte("frozen secret"))
		if err != nil {
			panic(err)
		}
		pokeAt(dataPtr(b))
	}
	children["write to melted buffer"] = func() {
		b := meltedBuffer()
		// The control case: writing through the API after Melt is allowed.
		_ = b.WithDataMut(func(d []byte) error {
			pokeAt(unsafe.Pointer(unsafe.SliceData(d)))
			return nil
		})
	}
	children["raw write after melt"] = func() {
		b := meltedBuffer()
		pokeAt(dataPtr(b)) // melt is lazy: the page is still read-only
	}
}

func TestFaultsKillTheProcess(t *testing.T) {
	for _, name := range []string{"overflow into guard page", "underflow into guard page", "write to frozen buffer", "raw write after melt"} {
		t.Run(name, func(t *testing.T) {
			res := runChild(t, name)
			assertFaultedAtPoke(t, res)
			assert.Contains(t, res.stderr, "signal SIGSEGV")
		})
	}
}

// assertFaultedAtPoke checks that a child died of a fatal fault at the
// address it announced (pokeAt's first line), before it could say more.
func assertFaultedAtPoke(t *testing.T, res childResult) {
	t.Helper()
	assert.NotContains(t, res.stdout, survivedMarker)
	assert.Equal(t, 2, res.exitCode, "the Go runtime's exit status for a fatal fault")
	fields := strings.Fields(res.stdout)
	require.NotEmpty(t, fields, "the child announced no address: %s", res.stderr)
	poke := strings.TrimPrefix(fields[0], "poke=")
	assert.Contains(t, res.stderr, "unexpected fault address "+poke, "faulted at the announced address")
}

func TestWriteToMeltedBufferSurvives(t *testing.T) {
	res := runChild(t, "write to melted buffer")
	assert.Equal(t, 0, res.exitCode, res.stderr)
	assert.Contains(t, res.stdout, survivedMarker)
}

// In-page overflows and underflows cannot fault; the canaries catch them.
func TestOneByteOverflowAndUnderflowAreReported(t *testing.T) {
	for name, offset := range map[string]int{"overflow": 20, "underflow": -1} {
		t.Run(name, func(t *testing.T) {
			b := mustBuffer(20)
			before := memguard.Stats().CanaryFailures
			require.NoError(t, b.WithDataMut(func(d []byte) error {
				*(*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(d)), offset)) ^= 0xff
				return nil
			}))
			assert.ErrorIs(t, b.Verify(), memguard.ErrCanaryCorrupt)
			assert.ErrorIs(t, b.WithData(func([]byte) error { return nil }), memguard.ErrCanaryCorrupt)
			assert.ErrorIs(t, b.Destroy(), memguard.ErrCanaryCorrupt)
			assert.False(t, b.Alive())
			assert.Equal(t, before+1, memguard.Stats().CanaryFailures)
		})
	}
}
