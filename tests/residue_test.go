package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/securememory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// privateMap returns n bytes of anonymous memory outside the Go heap, which
// the residue scan skips: reference copies of secrets live here.
func privateMap(t *testing.T, n int) []byte {
	t.Helper()
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Munmap(b) })
	return b
}

type span struct{ start, end uintptr }

func spanOf(b []byte) span {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return span{p, p + uintptr(cap(b))}
}

// findResidue scans every readable mapping of this process, except the
// excluded ones, for each needle, and returns where it found them.
func findResidue(t *testing.T, needles [][]byte, exclude []span) []string {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	mem, err := os.Open("/proc/self/mem")
	require.NoError(t, err)
	defer mem.Close()

	const chunk = 1 << 20
	buf := privateMap(t, chunk)
	exclude = append(exclude, spanOf(buf))
	var hits []string
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		var m span
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &m.start, &m.end); err != nil || fields[1][0] != 'r' {
			continue
		}
		name := ""
		if len(fields) > 5 {
			name = fields[5]
		}
		if name == "[vvar]" || name == "[vvar_vclock]" || name == "[vsyscall]" {
			continue
		}
		for addr := m.start; addr < m.end; {
			if ex, ok := excluded(addr, exclude); ok {
				addr = ex
				continue
			}
			n := min(uintptr(chunk), m.end-addr)
			for _, ex := range exclude { // stop before the next excluded span
				if ex.start > addr && ex.start < addr+n {
					n = ex.start - addr
				}
			}
			got, _ := mem.ReadAt(buf[:n], int64(addr))
			for i, needle := range needles {
				if bytes.Contains(buf[:got], needle) {
					hits = append(hits, fmt.Sprintf("secret %d in %s %s", i, fields[0], name))
				}
			}
			// Overlap chunks so a secret straddling two is still seen.
			if n == uintptr(chunk) {
				n -= 64
			}
			addr += n
		}
	}
	require.NoError(t, sc.Err())
	return hits
}

func excluded(addr uintptr, spans []span) (uintptr, bool) {
	for _, s := range spans {
		if addr >= s.start && addr < s.end {
			return s.end, true
		}
	}
	return 0, false
}

func TestNoResidue(t *testing.T) {
	const size = 48
	refs := privateMap(t, 8*size)
	secret := func(i int) []byte { return refs[i*size : (i+1)*size] }
	require.NoError(t, memguard.ScrambleBytes(refs[:2*size])) // secrets 0 and 1 are random
	scratch := privateMap(t, 4*size)                          // sources the library wipes
	src := func(i int) []byte {
		s := scratch[i*size : (i+1)*size]
		copy(s, secret(0))
		return s
	}
	mustEqual := func(b *memguard.Buffer, want []byte) {
		ok, err := b.EqualTo(want)
		require.NoError(t, err)
		require.True(t, ok)
	}

	// From bytes, from readers.
	fromBytes, err := memguard.NewBufferFromBytes(src(0))
	require.NoError(t, err)
	assert.Equal(t, make([]byte, size), scratch[:size], "source wiped")
	fromReader, err := memguard.NewBufferFromReader(bytes.NewReader(secret(0)), size)
	require.NoError(t, err)
	fromEntire, err := memguard.NewBufferFromEntireReader(iotest.HalfReader(bytes.NewReader(secret(0))))
	require.NoError(t, err)
	_, err = memguard.NewBufferFromReader(io.MultiReader(bytes.NewReader(secret(0)[:20]), iotest.ErrReader(io.ErrClosedPipe)), size)
	require.Error(t, err) // a failed read wipes what it read
	for _, b := range []*memguard.Buffer{fromBytes, fromReader, fromEntire} {
		mustEqual(b, secret(0))
	}

	// Random: its value is copied out to a reference to look for later.
	random, err := memguard.NewBufferRandom(size)
	require.NoError(t, err)
	require.NoError(t, random.WithData(func(d []byte) error { copy(secret(2), d); return nil }))

	// Seal, open, re-seal, open.
	enclave, err := fromBytes.Seal()
	require.NoError(t, err)
	opened, err := enclave.Open()
	require.NoError(t, err)
	mustEqual(opened, secret(0))
	resealed, err := opened.Seal()
	require.NoError(t, err)
	again, err := resealed.Open()
	require.NoError(t, err)
	mustEqual(again, secret(0))
	direct, err := memguard.NewEnclave(src(1))
	require.NoError(t, err)
	directOpened, err := direct.Open()
	require.NoError(t, err)
	mustEqual(directOpened, secret(0))
	randomEnclave, err := random.Seal()
	require.NoError(t, err)
	randomOpened, err := randomEnclave.Open()
	require.NoError(t, err)
	mustEqual(randomOpened, secret(2))

	// Secret 1 goes through WithDataMut and Melt/Freeze.
	mutable, err := memguard.NewBuffer(size)
	require.NoError(t, err)
	require.NoError(t, mutable.WithDataMut(func(d []byte) error { copy(d, secret(1)); return nil }))
	require.NoError(t, mutable.Freeze())
	require.NoError(t, mutable.Melt())
	mustEqual(mutable, secret(1))

	// A coffer's key, through WithKey and View.
	coffer, err := memguard.NewCoffer()
	require.NoError(t, err)
	require.NoError(t, coffer.WithKey(func(k []byte) error { copy(secret(3)[:32], k); return nil }))
	require.NoError(t, coffer.Rekey())
	view, err := coffer.View()
	require.NoError(t, err)
	mustEqual(view, secret(3)[:32])

	// A stream: chunked seal, a partial read that re-seals the rest, Flush.
	stream := memguard.NewStream(memguard.WithChunkSize(16))
	_, err = stream.Write(src(2))
	require.NoError(t, err)
	head := scratch[3*size : 3*size+10]
	_, err = stream.Read(head) // the caller's copy, in excluded memory
	require.NoError(t, err)
	flushed, err := stream.Flush()
	require.NoError(t, err)
	mustEqual(flushed, secret(0)[10:])
	memguard.WipeBytes(head)

	// A securememory secret: WithBytes and a reader.
	sm, err := new(securememory.Factory).New(src(3))
	require.NoError(t, err)
	require.NoError(t, sm.WithBytes(func(b []byte) error {
		if !bytes.Equal(b, secret(0)) {
			return io.ErrUnexpectedEOF
		}
		return nil
	}))
	n, err := io.ReadFull(sm.NewReader(), scratch[3*size:4*size])
	require.NoError(t, err)
	require.Equal(t, size, n)
	memguard.WipeBytes(scratch[3*size : 4*size])
	require.NoError(t, sm.Close())

	for _, b := range []*memguard.Buffer{fromReader, fromEntire, opened, again, directOpened, randomOpened, mutable, view, flushed} {
		require.NoError(t, b.Destroy())
	}
	require.NoError(t, coffer.Destroy())
	memguard.Purge() // the region cache and the enclave key

	needles := [][]byte{secret(0), secret(1), secret(2), secret(3)[:32]}
	hits := findResidue(t, needles, []span{spanOf(refs), spanOf(scratch)})
	assert.Empty(t, hits, "secrets left in process memory")

	// Control: the scan finds a secret that is still in ordinary memory.
	leak := make([]byte, size)
	copy(leak, secret(0))
	assert.NotEmpty(t, findResidue(t, needles[:1], []span{spanOf(refs), spanOf(scratch)}), "the scan must see a heap copy")
	memguard.WipeBytes(leak)
}
