//go:build linux && (amd64 || arm64)

package tests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/internal/memscan"
	"github.com/securememory/memguard/internal/seccomp"
	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// vmHWM is the process's peak resident set in bytes.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	check(err == nil, "open status: %v", err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(kb, "kB")), 10, 64)
			check(err == nil, "VmHWM: %q", kb)
			return n << 10
		}
	}
	check(false, "no VmHWM in /proc/self/status")
	return 0
}

func init() {
	// Destroy does not fault in the pages of a buffer that never held data.
	children["destroy untouched"] = func() {
		before := vmHWM()
		b, err := memguard.NewBuffer(1 << 30)
		check(err == nil, "NewBuffer: %v", err)
		check(b.Destroy() == nil, "Destroy")
		grew := vmHWM() - before
		fmt.Printf("VmHWM grew by %d KiB\n", grew>>10)
		check(grew < 16<<20, "an untouched 1 GiB buffer raised VmHWM by %d MiB", grew>>20)
	}

	// A buffer only read maps the kernel's zero page: Destroy must not
	// allocate a frame per page to write zeros over zeros.
	children["destroy read only"] = func() {
		b, err := memguard.NewBuffer(256 << 20)
		check(err == nil, "NewBuffer: %v", err)
		var sum byte
		check(b.WithData(func(d []byte) error {
			for i := 0; i < len(d); i += 512 {
				sum |= d[i]
			}
			return nil
		}) == nil, "WithData")
		before := vmHWM()
		check(b.Destroy() == nil, "Destroy")
		grew := vmHWM() - before
		fmt.Printf("VmHWM grew by %d KiB (sum %d)\n", grew>>10, sum)
		check(grew < 16<<20, "a read-only 256 MiB buffer raised VmHWM by %d MiB", grew>>20)
	}

	// Purge wipes a buffer in use in place, under its user: only the pages
	// that held data.
	children["purge busy untouched"] = func() {
		b, err := memguard.NewBuffer(1 << 30)
		check(err == nil, "NewBuffer: %v", err)
		before := vmHWM()
		err = b.WithData(func([]byte) error {
			memguard.Purge()
			return nil
		})
		check(errors.Is(err, memguard.ErrDestroyed), "purged under the callback: %v", err)
		grew := vmHWM() - before
		fmt.Printf("VmHWM grew by %d KiB\n", grew>>10)
		check(grew < 16<<20, "Purge of a busy untouched 1 GiB buffer raised VmHWM by %d MiB", grew>>20)
	}

	// A written buffer is wiped before it is unmapped: with the unmap
	// refused, its pages stay readable, and hold zeros. The secret is
	// written and copied out by the kernel (getrandom, /proc/self/mem):
	// a copy made in Go can leave its tail in registers that a preemption
	// signal saves to a signal stack, where the scan would find it.
	children["destroy written"] = func() {
		const size = 64 << 20
		ref, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
		check(err == nil, "mmap: %v", err)
		mem, err := os.Open("/proc/self/mem")
		check(err == nil, "open mem: %v", err)
		b, err := memguard.NewBufferRandom(size)
		check(err == nil, "NewBufferRandom: %v", err)
		var data uintptr
		check(b.WithData(func(d []byte) error {
			data = uintptr(unsafe.Pointer(&d[0]))
			return nil
		}) == nil, "WithData")
		n, err := mem.ReadAt(ref, int64(data))
		check(n == size, "copy out: %d bytes, %v", n, err)

		// The data pages start at the page holding the leading canary,
		// and the mapping one guard page before.
		page := uintptr(os.Getpagesize())
		base := uint64((data-16)&^(page-1) - page)
		check(seccomp.Refuse(unix.SYS_MUNMAP, &base, syscall.EPERM) == nil, "refuse munmap")
		err = b.Destroy()
		check(errors.Is(err, memguard.ErrProtection) && errors.Is(err, syscall.EPERM), "unmap refused: %v", err)

		left := make([]byte, size)
		n, err = mem.ReadAt(left, int64(data))
		check(n == size, "still mapped and readable: %d bytes, %v", n, err)
		zeros := bytes.Count(left, []byte{0})
		check(zeros == size, "wiped: %d of %d bytes zero", zeros, size)

		var needles [][]byte
		for off := 0; off < size; off += size / 8 {
			needles = append(needles, ref[off:off+64])
		}
		needles = append(needles, ref[size-64:])
		hits, err := memscan.Find(needles, []memscan.Span{memscan.SpanOf(ref)})
		check(err == nil && len(hits) == 0, "residue: %v %v", hits, err)
		// Control: the scan sees a copy in ordinary memory.
		copy(left[size/2:], needles[0])
		hits, err = memscan.Find(needles[:1], []memscan.Span{memscan.SpanOf(ref)})
		check(err == nil && len(hits) > 0, "the scan must see a copy: %v", err)
		clear(left)
	}
}

func TestDestroyTouchesOnlyWrittenPages(t *testing.T) {
	for _, name := range []string{"destroy untouched", "destroy read only", "purge busy untouched", "destroy written"} {
		res := runChild(t, name)
		assert.Contains(t, res.stdout, survivedMarker, "%s: %s%s", name, res.stdout, res.stderr)
		t.Logf("%s: %s", name, strings.TrimSpace(strings.ReplaceAll(res.stdout, survivedMarker, "")))
	}
}
