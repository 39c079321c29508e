//go:build linux && (amd64 || arm64)

package tests

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/internal/seccomp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// marker is a recognisable pattern, not a secret.
var marker = bytes.Repeat([]byte("options-marker!!"), 2)

func markedBuffer(t *testing.T, opts ...memguard.Option) *memguard.Buffer {
	t.Helper()
	b, err := memguard.NewBufferFromBytes(bytes.Clone(marker), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Destroy() })
	return b
}

func init() {
	children["read after the callback, no access when idle"] = func() {
		b, err := memguard.NewBuffer(32, memguard.NoAccessWhenIdle())
		check(err == nil, "buffer: %v", err)
		var kept []byte
		check(b.WithDataMut(func(d []byte) error { kept = d; return nil }) == nil, "WithDataMut")
		fmt.Printf("poke=%#x\n", uintptr(unsafe.Pointer(unsafe.SliceData(kept))))
		fmt.Println("read", kept[0]) // must fault: the page is PROT_NONE again
	}
}

func TestNoAccessWhenIdlePageFlags(t *testing.T) {
	b, err := memguard.NewBuffer(32, memguard.NoAccessWhenIdle())
	require.NoError(t, err)
	defer b.Destroy()
	var addr uintptr
	require.NoError(t, b.WithDataMut(func(d []byte) error {
		addr = uintptr(unsafe.Pointer(unsafe.SliceData(d)))
		assert.Equal(t, "rw-p", mappingAt(t, readSmaps(t), addr).perms, "writable inside WithDataMut")
		copy(d, marker)
		return nil
	}))
	idle := mappingAt(t, readSmaps(t), addr)
	assert.Equal(t, "---p", idle.perms, "no access when idle")
	assert.Contains(t, idle.flags, "lo", "still locked")
	require.NoError(t, b.WithData(func(d []byte) error {
		assert.Equal(t, "r--p", mappingAt(t, readSmaps(t), addr).perms, "readable inside WithData")
		return nil
	}))
	ok, err := b.EqualTo(marker)
	require.NoError(t, err)
	assert.True(t, ok)
	require.NoError(t, b.Freeze())
	require.NoError(t, b.Verify())
	assert.Equal(t, "---p", mappingAt(t, readSmaps(t), addr).perms, "after EqualTo, Freeze and Verify")
}

func TestNoAccessWhenIdleKeptSliceFaults(t *testing.T) {
	res := runChild(t, "read after the callback, no access when idle")
	assertFaultedAtPoke(t, res)
	assert.NotContains(t, res.stdout, "read ", "the read returned instead of faulting")
}

func TestSecretMemoryMapping(t *testing.T) {
	before := memguard.Stats().SecretMemoryBuffers
	b := markedBuffer(t, memguard.SecretMemory())
	addr := dataAddr(b)
	maps := readSmaps(t)
	data := mappingAt(t, maps, addr)
	assert.Equal(t, "r--s", data.perms, "frozen, and shared: memfd_secret pages")
	assert.NotContains(t, data.flags, "wf", "MADV_WIPEONFORK is for private pages; the child gets no mapping instead")
	assert.Contains(t, data.flags, "dc", "MADV_DONTFORK")
	first := (addr - 16) &^ (pageSize - 1)
	assert.Equal(t, first, data.start, "data pages start where the leading guard ends")
	for name, guardAddr := range map[string]uintptr{"leading": data.start - 1, "trailing": data.end} {
		assert.Equal(t, "---p", mappingAt(t, maps, guardAddr).perms, "%s guard page", name)
	}
	line := mapsLine(t, addr)
	assert.Contains(t, line, "/secretmem", "/proc/self/maps names secret memory: %s", line)
	assert.Equal(t, before+1, memguard.Stats().SecretMemoryBuffers)
}

// mapsLine is the line of /proc/self/maps for the mapping holding addr.
func mapsLine(t *testing.T, addr uintptr) string {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	for _, line := range strings.Split(string(maps), "\n") {
		var start, end uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &start, &end); err == nil && start <= addr && addr < end {
			return line
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return ""
}

func TestSecretMemoryUnreadableThroughProcMem(t *testing.T) {
	mem, err := os.Open("/proc/self/mem")
	require.NoError(t, err)
	defer mem.Close()
	peek := func(b *memguard.Buffer) ([]byte, error) {
		out := make([]byte, len(marker))
		var n int
		err := b.WithData(func(d []byte) error {
			n, err = mem.ReadAt(out, int64(uintptr(unsafe.Pointer(unsafe.SliceData(d)))))
			return err
		})
		return out[:n], err
	}
	seen, err := peek(markedBuffer(t))
	require.NoError(t, err, "control: an ordinary buffer is readable through /proc/self/mem")
	assert.Equal(t, marker, seen)

	seen, err = peek(markedBuffer(t, memguard.SecretMemory()))
	assert.ErrorIs(t, err, syscall.EIO, "secret memory is out of the kernel's direct map")
	assert.Empty(t, seen)

	// What NoAccessWhenIdle does not defend against, as documented: the
	// kernel reads PROT_NONE pages for /proc/PID/mem all the same.
	idle := markedBuffer(t, memguard.NoAccessWhenIdle())
	out := make([]byte, len(marker))
	n, err := mem.ReadAt(out, int64(dataAddr(idle)))
	require.NoError(t, err)
	assert.Equal(t, marker, out[:n], "an idle NoAccessWhenIdle buffer, through /proc/self/mem")
	hidden := markedBuffer(t, memguard.NoAccessWhenIdle(), memguard.SecretMemory())
	_, err = mem.ReadAt(out, int64(dataAddr(hidden)))
	assert.ErrorIs(t, err, syscall.EIO, "with SecretMemory too, it cannot")
}

const peekEnv = "MEMGUARD_TEST_PEEK"

func init() {
	// Reads another process's memory with process_vm_readv, as root.
	children["process_vm_readv"] = func() {
		var pid int
		var addr uintptr
		var n int
		_, err := fmt.Sscanf(os.Getenv(peekEnv), "%d:%x:%d", &pid, &addr, &n)
		check(err == nil, "peek target: %v", err)
		check(os.Geteuid() == 0, "runs as root")
		out := make([]byte, n)
		local := []unix.Iovec{{Base: &out[0], Len: uint64(n)}}
		remote := []unix.RemoteIovec{{Base: addr, Len: n}}
		got, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err != nil {
			fmt.Println("refused:", err)
			return
		}
		fmt.Println("read:", hex.EncodeToString(out[:got]))
	}
}

func TestSecretMemoryUnreadableFromAnotherProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to read another process's memory (CI runs as root)")
	}
	peek := func(b *memguard.Buffer) string {
		var res childResult
		require.NoError(t, b.WithData(func(d []byte) error {
			target := fmt.Sprintf("%d:%x:%d", os.Getpid(), uintptr(unsafe.Pointer(unsafe.SliceData(d))), len(d))
			res = runChild(t, "process_vm_readv", func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, peekEnv+"="+target) })
			return nil
		}))
		require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
		return res.stdout
	}
	assert.Contains(t, peek(markedBuffer(t)), "read: "+hex.EncodeToString(marker), "control: root reads an ordinary buffer")
	out := peek(markedBuffer(t, memguard.SecretMemory()))
	assert.Contains(t, out, "refused:", "root cannot read secret memory")
	assert.NotContains(t, out, hex.EncodeToString(marker))
}

func TestSecretMemoryForkedChildDies(t *testing.T) {
	touch := func(b *memguard.Buffer) (sig syscall.Signal, err error) {
		require.NoError(t, b.WithData(func(d []byte) error {
			sig, err = forkTouch(unsafe.Pointer(unsafe.SliceData(d)))
			return nil
		}))
		return sig, err
	}
	sig, err := touch(markedBuffer(t))
	require.NoError(t, err)
	assert.Zero(t, sig, "control: an ordinary buffer's child reads zeros and lives")

	sig, err = touch(markedBuffer(t, memguard.SecretMemory()))
	require.NoError(t, err)
	assert.Equal(t, syscall.SIGSEGV, sig, "the child has no mapping of secret memory")
}

func init() {
	// memfd_secret refused as the kernel refuses it where it is missing
	// or disabled (ENOSYS), or a seccomp filter forbids it (EPERM).
	children["secret memory unavailable"] = func() {
		errno, err := strconv.Atoi(os.Getenv(peekEnv))
		check(err == nil, "errno: %v", err)
		check(seccomp.Refuse(unix.SYS_MEMFD_SECRET, nil, syscall.Errno(errno)) == nil, "seccomp")
		before := memguard.Stats()

		b, err := memguard.NewBuffer(32, memguard.SecretMemory())
		check(b == nil && errors.Is(err, errors.ErrUnsupported), "ErrUnsupported, got %v", err)
		check(errors.Is(err, syscall.Errno(errno)), "the errno is kept: %v", err)
		fmt.Println("refused:", err)
		s := memguard.Stats()
		check(s.LiveBuffers == before.LiveBuffers && s.LockedBytes == before.LockedBytes, "nothing allocated: %+v", s)

		b, err = memguard.NewBufferFromBytes(bytes.Clone(marker), memguard.SecretMemory(), memguard.AllowFallback())
		check(err == nil, "fallback: %v", err)
		check(b.Locked(), "ordinary locked pages")
		ok, err := b.EqualTo(marker)
		check(ok && err == nil, "contents: %v", err)
		s = memguard.Stats()
		check(s.SecretMemoryFallbacks == 1 && s.SecretMemoryBuffers == 0, "fallback counted: %+v", s)

		check(memguard.SetDefaultOptions(memguard.SecretMemory()) == nil, "defaults")
		_, err = memguard.NewEnclave([]byte("sealed"))
		check(errors.Is(err, errors.ErrUnsupported), "the process key wants secret memory: %v", err)
		check(memguard.SetDefaultOptions(memguard.SecretMemory(), memguard.AllowFallback()) == nil, "defaults")
		e, err := memguard.NewEnclave([]byte("sealed"))
		check(err == nil, "the process key falls back: %v", err)
		o, err := e.Open()
		check(err == nil, "open: %v", err)
		check(o.Destroy() == nil, "destroy")
		check(memguard.Stats().SecretMemoryFallbacks == 3, "key and Open counted: %+v", memguard.Stats())
	}
}

func TestSecretMemoryUnavailable(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSYS, syscall.EPERM} {
		t.Run(errno.Error(), func(t *testing.T) {
			res := runChild(t, "secret memory unavailable", func(cmd *exec.Cmd) {
				cmd.Env = append(cmd.Env, peekEnv+"="+strconv.Itoa(int(errno)))
			})
			require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
			assert.Contains(t, res.stdout, "memfd_secret", "the error says what was refused")
			t.Log(strings.SplitN(res.stdout, "\n", 2)[0])
		})
	}
}

func init() {
	// Secret memory counts against RLIMIT_MEMLOCK under every policy.
	children["secret memory under low memlock"] = func() {
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lowMemlock, Max: lowMemlock}) == nil, "setrlimit")
		var held []*memguard.Buffer
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			var b *memguard.Buffer
			if b, err = memguard.NewBuffer(32, memguard.SecretMemory()); err == nil {
				held = append(held, b)
			}
		}
		check(errors.Is(err, memguard.ErrMemoryLock), "ErrMemoryLock, got %v", err)
		check(strings.Contains(err.Error(), "ulimit -l"), "with the remedies: %v", err)
		fmt.Printf("held %d secret buffers: %v\n", len(held), err)

		for _, p := range []memguard.LockPolicy{memguard.LockBestEffort, memguard.LockDisabled} {
			memguard.SetLockPolicy(p)
			_, err = memguard.NewBuffer(32, memguard.SecretMemory())
			check(errors.Is(err, memguard.ErrMemoryLock), "policy %d: never unlocked without AllowFallback: %v", p, err)
			b, err := memguard.NewBuffer(32, memguard.SecretMemory(), memguard.AllowFallback())
			check(err == nil && !b.Locked(), "policy %d: unlocked ordinary pages with AllowFallback: %v", p, err)
			held = append(held, b)
		}
		s := memguard.Stats()
		check(s.SecretMemoryFallbacks == 2 && s.UnlockedBuffers == 2, "fallbacks counted: %+v", s)
		memguard.SetLockPolicy(memguard.LockRequired)
		_, err = memguard.NewBuffer(32, memguard.SecretMemory(), memguard.AllowFallback())
		check(errors.Is(err, memguard.ErrMemoryLock), "LockRequired: no fallback over the limit: %v", err)
	}
}

func TestSecretMemoryUnderLowMemlock(t *testing.T) {
	res := runChild(t, "secret memory under low memlock", asNobody(t))
	require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, survivedMarker)
	t.Log(strings.SplitN(res.stdout, "\n", 2)[0])
}
