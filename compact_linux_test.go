//go:build linux && (amd64 || arm64)

package memguard

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/securememory/memguard/internal/seccomp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// mapsLine is the /proc/self/maps line of the mapping that holds p.
func mapsLine(t *testing.T, p unsafe.Pointer) string {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	require.NoError(t, err)
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x", &lo, &hi); err == nil && lo <= uintptr(p) && uintptr(p) < hi {
			return sc.Text()
		}
	}
	t.Fatalf("no mapping holds %p", p)
	return ""
}

// A slot in secret memory holds a secret like any other, but even this
// process cannot read it through /proc/self/mem, which reads an ordinary
// slot.
func TestSecretSlot(t *testing.T) {
	s, err := allocSlot(32, mapSecret)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no secret memory here: %v", err)
	}
	require.NoError(t, err)
	defer func() { require.NoError(t, s.free()) }()
	plain := mustSlot(t, 32, mapLock)
	defer func() { require.NoError(t, plain.free()) }()
	copy(s.bytes(), pattern(32))
	copy(plain.bytes(), pattern(32))

	assert.True(t, s.secretMemory())
	assert.Contains(t, mapsLine(t, unsafe.Pointer(s.m.data)), "secretmem")
	assert.NotContains(t, mapsLine(t, unsafe.Pointer(plain.m.data)), "secretmem")

	mem, err := os.Open("/proc/self/mem")
	require.NoError(t, err)
	defer mem.Close()
	got := make([]byte, 32)
	_, err = mem.ReadAt(got, int64(uintptr(unsafe.Pointer(plain.m.data))))
	require.NoError(t, err, "the control")
	assert.Equal(t, pattern(32), got)
	clear(got)
	_, err = mem.ReadAt(got, int64(uintptr(unsafe.Pointer(s.m.data))))
	assert.Error(t, err)
	assert.Equal(t, make([]byte, 32), got)
	assert.True(t, s.canaryIntact())
}

// Where memfd_secret is missing or filtered, a secret slot is
// errors.ErrUnsupported with the kernel's errno, and the other arenas
// work on. In a child process, as the filter cannot be removed.
func TestSecretSlotUnsupported(t *testing.T) {
	const marker = "MEMGUARD_SECRET_SLOT_CHILD"
	if os.Getenv(marker) != "1" {
		child := exec.Command(os.Args[0], "-test.v", "-test.run=^"+t.Name()+"$")
		child.Env = append(os.Environ(), marker+"=1")
		out, err := child.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.True(t, strings.Contains(string(out), "--- PASS: "+t.Name()), "%s", out)
		return
	}
	require.NoError(t, seccomp.Refuse(unix.SYS_MEMFD_SECRET, nil, syscall.ENOSYS))
	s, err := allocSlot(32, mapSecret)
	assert.Nil(t, s)
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	assert.ErrorIs(t, err, syscall.ENOSYS)
	s = mustSlot(t, 32, mapLock)
	require.NoError(t, s.free())
}
