package tests

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mapping is one entry of /proc/self/smaps.
type mapping struct {
	start, end uintptr
	perms      string
	rssKB      int
	flags      []string
}

func readSmaps(t *testing.T) []mapping {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	var maps []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		var m mapping
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &m.start, &m.end); err == nil && len(fields) >= 5 {
			m.perms = fields[1]
			maps = append(maps, m)
			continue
		}
		last := &maps[len(maps)-1]
		switch fields[0] {
		case "Rss:":
			fmt.Sscan(fields[1], &last.rssKB)
		case "VmFlags:":
			last.flags = fields[1:]
		}
	}
	require.NoError(t, sc.Err())
	return maps
}

func mappingAt(t *testing.T, maps []mapping, addr uintptr) mapping {
	t.Helper()
	for _, m := range maps {
		if m.start <= addr && addr < m.end {
			return m
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return mapping{}
}

func TestPageFlags(t *testing.T) {
	for _, size := range []int{1, 32, 4096, 10000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			b, err := memguard.NewBufferRandom(size)
			require.NoError(t, err)
			defer b.Destroy()
			addr := dataAddr(b)
			first := (addr - 16) &^ (pageSize - 1) // the page of the leading canary
			end := (addr + uintptr(size) + pageSize - 1) &^ (pageSize - 1)

			maps := readSmaps(t)
			data := mappingAt(t, maps, addr)
			assert.Equal(t, "r--p", data.perms, "frozen data is read-only")
			for _, flag := range []string{"lo", "dd", "wf"} {
				assert.Contains(t, data.flags, flag, "VmFlags %v", data.flags)
			}
			assert.Equal(t, data.start, first, "data pages start where the leading guard ends")
			assert.Equal(t, data.end, end, "data pages end where the trailing guard starts")

			for name, guardAddr := range map[string]uintptr{"leading": first - 1, "trailing": end} {
				guard := mappingAt(t, maps, guardAddr)
				assert.Equal(t, "---p", guard.perms, "%s guard page", name)
				assert.Zero(t, guard.rssKB, "%s guard page is never written", name)
				assert.NotContains(t, guard.flags, "lo", "%s guard page is not locked", name)
			}

			require.NoError(t, b.Melt())
			assert.Equal(t, "r--p", mappingAt(t, readSmaps(t), addr).perms, "melt is lazy")
			require.NoError(t, b.WithDataMut(func([]byte) error { return nil }))
			assert.Equal(t, "rw-p", mappingAt(t, readSmaps(t), addr).perms, "writable once written")
			require.NoError(t, b.Freeze())
			assert.Equal(t, "r--p", mappingAt(t, readSmaps(t), addr).perms)
		})
	}
}
