//go:build linux

// Package memscan searches this process's own memory for byte strings,
// through /proc/self/maps and /proc/self/mem. Tests use it to prove that no
// copy of a secret is left anywhere.
package memscan

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// Span is a range of addresses [Start, End).
type Span struct{ Start, End uintptr }

// SpanOf is the span of b's backing array.
func SpanOf(b []byte) Span {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return Span{p, p + uintptr(cap(b))}
}

// Private returns n bytes of private anonymous memory outside the Go heap,
// unmapped when the test ends. Tests keep reference copies of secrets
// there, and exclude it from the scan.
func Private(t testing.TB, n int) []byte {
	t.Helper()
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return b
}

const chunk = 1 << 20

// Find scans every readable mapping of the process, except the excluded
// spans, for each needle, and describes where it found them. It reads
// through a scratch mapping of its own, which it skips too.
func Find(needles [][]byte, exclude []Span) ([]string, error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	buf, err := syscall.Mmap(-1, 0, chunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, err
	}
	defer syscall.Munmap(buf)
	exclude = append(exclude, SpanOf(buf))

	var hits []string
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		var m Span
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &m.Start, &m.End); err != nil || fields[1][0] != 'r' {
			continue
		}
		name := ""
		if len(fields) > 5 {
			name = fields[5]
		}
		if name == "[vvar]" || name == "[vvar_vclock]" || name == "[vsyscall]" {
			continue
		}
		for addr := m.Start; addr < m.End; {
			if end, ok := inside(addr, exclude); ok {
				addr = end
				continue
			}
			n := min(uintptr(chunk), m.End-addr)
			for _, ex := range exclude { // stop before the next excluded span
				if ex.Start > addr && ex.Start < addr+n {
					n = ex.Start - addr
				}
			}
			got, _ := mem.ReadAt(buf[:n], int64(addr))
			for i, needle := range needles {
				if bytes.Contains(buf[:got], needle) {
					hits = append(hits, fmt.Sprintf("needle %d in %s %s", i, fields[0], name))
				}
			}
			if n == chunk { // overlap chunks, so a needle across two is seen
				n -= 64
			}
			addr += n
		}
	}
	return hits, sc.Err()
}

func inside(addr uintptr, spans []Span) (uintptr, bool) {
	for _, s := range spans {
		if addr >= s.Start && addr < s.End {
			return s.End, true
		}
	}
	return 0, false
}
