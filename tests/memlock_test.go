package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/internal/procfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const lowMemlock = 64 << 10

// check reports a failed expectation from a child and exits non-zero.
func check(ok bool, format string, args ...any) {
	if !ok {
		fmt.Printf("CHECK FAILED: "+format+"\n", args...)
		os.Exit(1)
	}
}

func secretFor(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 32) }

func init() {
	// Runs as an unprivileged user, so the kernel enforces RLIMIT_MEMLOCK.
	children["low memlock"] = func() {
		lim := syscall.Rlimit{Cur: lowMemlock, Max: lowMemlock}
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lim.Cur, Max: lim.Max}) == nil, "setrlimit")
		check(memguard.Stats().MemlockLimit == lowMemlock, "limit reported: %d", memguard.Stats().MemlockLimit)

		var held []*memguard.Buffer
		var lockErr error
		for i := 0; i < 1000; i++ {
			b, err := memguard.NewBufferFromBytes(secretFor(i))
			if err != nil {
				check(b == nil, "nil buffer on error")
				lockErr = err
				break
			}
			held = append(held, b)
		}
		check(lockErr != nil, "the limit was never hit")
		check(errors.Is(lockErr, memguard.ErrMemoryLock), "ErrMemoryLock, got %v", lockErr)
		check(errors.Is(lockErr, syscall.ENOMEM) || errors.Is(lockErr, syscall.EAGAIN) || errors.Is(lockErr, syscall.EPERM), "errno kept: %v", lockErr)
		var le *memguard.LockError
		check(errors.As(lockErr, &le) && le.Limit == lowMemlock, "LockError with the limit: %#v", le)
		for _, want := range []string{"65536", "ulimit -l", "LockBestEffort", "CAP_IPC_LOCK"} {
			check(strings.Contains(lockErr.Error(), want), "message names %q: %v", want, lockErr)
		}
		check(memguard.Stats().LockFailures >= 1, "lock failure counted")
		fmt.Printf("held %d buffers before the limit\n", len(held))

		for i, b := range held {
			ok, err := b.EqualTo(secretFor(i))
			check(err == nil && ok, "buffer %d intact after the failure: %v", i, err)
		}

		// Destroyed one-page buffers stay locked in the cache; a two-page
		// buffer must still get locked memory, by draining it.
		check(len(held) >= 6, "the limit holds %d one-page buffers: too few pages of %d bytes for this test", len(held), os.Getpagesize())
		for _, b := range held[len(held)-2:] {
			check(b.Destroy() == nil, "destroy")
		}
		held = held[:len(held)-2]
		check(memguard.Stats().CachedRegions == 2, "cached: %d", memguard.Stats().CachedRegions)
		two, err := memguard.NewBuffer(os.Getpagesize()) // two pages, with its canary
		check(err == nil, "two-page buffer after draining the cache: %v", err)
		check(memguard.Stats().UnlockedBuffers == 0 && memguard.Stats().CachedRegions == 0, "locked, cache drained: %+v", memguard.Stats())
		check(two.Destroy() == nil, "destroy")

		// Free a few: sealing needs the key coffer's page and opening one more.
		for _, b := range held[len(held)-3:] {
			check(b.Destroy() == nil, "destroy")
		}
		held = held[:len(held)-3]
		e, err := memguard.NewEnclave([]byte("sealed under the limit"))
		check(err == nil, "seal after freeing: %v", err)
		opened, err := e.Open()
		check(err == nil, "open after freeing: %v", err)
		ok, _ := opened.EqualTo([]byte("sealed under the limit"))
		check(ok, "opened contents")
		check(opened.Destroy() == nil, "destroy opened")

		memguard.SetLockPolicy(memguard.LockBestEffort)
		before := memguard.Stats().UnlockedBuffers
		for i := 0; i < 32; i++ {
			b, err := memguard.NewBufferFromBytes(secretFor(i))
			check(err == nil, "best effort allocation %d: %v", i, err)
			held = append(held, b)
		}
		s := memguard.Stats()
		check(s.LiveBuffers*os.Getpagesize() > lowMemlock, "live memory beyond the limit: %+v", s)
		check(s.UnlockedBuffers > before, "unlocked buffers counted: %+v", s)
		check(s.UnlockedBuffers+s.LockedBytes/os.Getpagesize() >= s.LiveBuffers, "every live buffer locked or counted unlocked: %+v", s)
		check(uint64(s.LockedBytes) <= lowMemlock, "locked bytes within the limit: %d", s.LockedBytes)
		fmt.Println("best effort beyond the limit: ok")
	}

	// A seal that fails leaves nothing behind: with one page to spare,
	// NewEnclaveRandom's buffer gets it, and the process key's Coffer then
	// cannot lock one.
	children["failed seal under low memlock"] = func() {
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lowMemlock, Max: lowMemlock}) == nil, "setrlimit")
		var held []*memguard.Buffer
		for {
			b, err := memguard.NewBuffer(32)
			if err != nil {
				check(errors.Is(err, memguard.ErrMemoryLock), "ErrMemoryLock, got %v", err)
				break
			}
			held = append(held, b)
		}
		check(held[0].Destroy() == nil, "destroy")
		live := memguard.Stats().LiveBuffers
		e, err := memguard.NewEnclaveRandom(32)
		check(e == nil && errors.Is(err, memguard.ErrMemoryLock), "no page for the key: %v", err)
		check(memguard.Stats().LiveBuffers == live, "live buffers: %d, %d before", memguard.Stats().LiveBuffers, live)
	}

	// RLIMIT_AS makes mmap fail: ErrOutOfMemory, and nothing else breaks.
	children["address space limit"] = func() {
		keep, err := memguard.NewBufferFromBytes([]byte("keep me"))
		check(err == nil, "first buffer: %v", err)
		var rl syscall.Rlimit
		check(syscall.Getrlimit(syscall.RLIMIT_AS, &rl) == nil, "getrlimit")
		status, err := os.ReadFile("/proc/self/status")
		check(err == nil, "status")
		var vmSize uint64
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmSize:") {
				fmt.Sscanf(strings.TrimPrefix(line, "VmSize:"), "%d", &vmSize)
			}
		}
		lim := syscall.Rlimit{Cur: (vmSize << 10) + 256<<20, Max: rl.Max}
		check(syscall.Setrlimit(syscall.RLIMIT_AS, &lim) == nil, "setrlimit")
		b, err := memguard.NewBuffer(1 << 30)
		check(b == nil && errors.Is(err, memguard.ErrOutOfMemory), "ErrOutOfMemory, got %v", err)
		check(errors.Is(err, syscall.ENOMEM), "errno kept: %v", err)
		ok, err := keep.EqualTo([]byte("keep me"))
		check(ok && err == nil, "earlier buffer intact: %v", err)
		small, err := memguard.NewBuffer(32)
		check(err == nil, "small allocations still work: %v", err)
		check(small.Destroy() == nil, "destroy")
	}
}

func init() {
	// vm.max_map_count (65530 by default): every buffer costs mappings, and
	// running out must be ErrOutOfMemory, never a crash.
	children["map count limit"] = func() {
		memguard.SetLockPolicy(memguard.LockDisabled)             // tens of thousands of pages
		keep := make([]*memguard.Buffer, 0, procfs.MaxMapCount()) // more than can fit
		var err error
		for len(keep) < cap(keep) {
			var b *memguard.Buffer
			if b, err = memguard.NewBuffer(32); err != nil {
				check(b == nil, "nil buffer on error")
				break
			}
			keep = append(keep, b)
		}
		check(errors.Is(err, memguard.ErrOutOfMemory), "ErrOutOfMemory, got %v after %d buffers", err, len(keep))
		check(errors.Is(err, syscall.ENOMEM), "errno kept: %v", err)
		check(strings.Contains(err.Error(), "vm.max_map_count"), "message names the limit: %v", err)
		for i := 0; i < len(keep); i += 499 {
			ok, err := keep[i].EqualTo(make([]byte, 32))
			check(ok && err == nil, "buffer %d intact: %v", i, err)
		}
		for _, b := range keep[:100] {
			check(b.Destroy() == nil, "destroy")
		}
		b, err := memguard.NewBuffer(32)
		check(err == nil, "allocation after freeing: %v", err)
		b.Destroy()
		fmt.Printf("mapping limit hit after %d buffers\n", len(keep))
	}
}

func TestMapCountLimit(t *testing.T) {
	switch n := procfs.MaxMapCount(); {
	case n == 0:
		t.Skip("no /proc/sys/vm/max_map_count to read")
	case n > 300000:
		t.Skipf("vm.max_map_count is %d: reaching it would take about %d buffers", n, n/2)
	}
	res := runChild(t, "map count limit")
	require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "mapping limit hit after")
	t.Log(strings.TrimSpace(strings.SplitN(res.stdout, "\n", 2)[0]))
}

// asNobody runs the child as an unprivileged user from a copy of the test
// binary that user can execute.
func asNobody(t *testing.T) func(*exec.Cmd) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as an unprivileged user (CI runs as root)")
	}
	// Not t.TempDir: its parent directory is private to root.
	dir, err := os.MkdirTemp("", "memguard-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "memguard.test")
	src, err := os.Open(os.Args[0])
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	return func(cmd *exec.Cmd) {
		cmd.Path, cmd.Args[0], cmd.Dir = bin, bin, dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
}

func TestLowMemlockLimit(t *testing.T) {
	res := runChild(t, "low memlock", asNobody(t))
	require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "held ")
	assert.Contains(t, res.stdout, "best effort beyond the limit: ok")
	assert.Contains(t, res.stdout, survivedMarker)
}

func TestFailedSealLeavesNothingLive(t *testing.T) {
	res := runChild(t, "failed seal under low memlock", asNobody(t))
	require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, survivedMarker)
}

func TestAddressSpaceLimit(t *testing.T) {
	res := runChild(t, "address space limit")
	require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, survivedMarker)
}

func init() {
	// Live secrets come before cached regions: 100 held under best effort
	// (most of them unlocked), all destroyed, then 10 held must all be
	// locked.
	children["best effort keeps live secrets locked"] = func() {
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lowMemlock, Max: lowMemlock}) == nil, "setrlimit")
		s := memguard.Stats()
		check(s.MemlockEnforced && s.MemlockHeadroom <= lowMemlock, "unprivileged: the limit is enforced: %+v", s)
		memguard.SetLockPolicy(memguard.LockBestEffort)
		hold := func(n int) []*memguard.Buffer {
			var held []*memguard.Buffer
			for i := 0; i < n; i++ {
				b, err := memguard.NewBufferFromBytes(secretFor(i))
				check(err == nil, "best effort allocation %d: %v", i, err)
				held = append(held, b)
			}
			return held
		}
		held := hold(100)
		check(memguard.Stats().LockFailures > 0, "refusals reported: %+v", memguard.Stats())
		for _, b := range held {
			check(b.Destroy() == nil, "destroy")
		}
		held = hold(10)
		for i, b := range held {
			check(b.Locked(), "buffer %d locked: %+v", i, memguard.Stats())
		}
		s = memguard.Stats()
		check(s.UnlockedBuffers == 0, "no unlocked live buffer: %+v", s)
		fmt.Printf("stats after holding 10: %+v\n", s)
	}
}

func TestBestEffortKeepsLiveSecretsLocked(t *testing.T) {
	res := runChild(t, "best effort keeps live secrets locked", asNobody(t))
	require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, survivedMarker)
	t.Log(strings.TrimSpace(res.stdout))
}

// churn runs 3 goroutines that each hold one secret at a time, of 1 to n
// pages, where n leaves one page of the 64 KiB limit free: every
// allocation can be locked if released regions are handed back in time. It
// returns how many allocations were made and how many failed or came back
// unlocked.
func churn(perGoroutine int) (total, bad int64) {
	page := os.Getpagesize()
	most := (lowMemlock/page - 1) / 3
	check(most >= 1, "page %d too large for the churn", page)
	var totals, bads atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				b, err := memguard.NewBuffer(((i*7+g)%most+1)*page - 64)
				totals.Add(1)
				if err != nil {
					check(errors.Is(err, memguard.ErrMemoryLock), "only a lock refusal: %v", err)
					bads.Add(1)
					continue
				}
				if !b.Locked() {
					bads.Add(1)
				}
				check(b.Destroy() == nil, "destroy")
			}
		}()
	}
	wg.Wait()
	return totals.Load(), bads.Load()
}

func init() {
	// With the budget full, one secret is rightly unlocked; a locked one
	// destroyed then must not wait in the cache with its lock.
	children["best effort hands locks back"] = func() {
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lowMemlock, Max: lowMemlock}) == nil, "setrlimit")
		memguard.SetLockPolicy(memguard.LockBestEffort)
		var held []*memguard.Buffer
		var unlocked *memguard.Buffer
		for unlocked == nil {
			b, err := memguard.NewBuffer(32)
			check(err == nil, "alloc: %v", err)
			if b.Locked() {
				held = append(held, b)
			} else {
				unlocked = b
			}
		}
		check(held[0].Destroy() == nil, "destroy")
		s := memguard.Stats()
		check(s.UnlockedBuffers == 1 && s.CachedRegions == 0, "no locked region cached while a secret is unlocked: %+v", s)
		again, err := memguard.NewBuffer(32)
		check(err == nil && again.Locked(), "the lock handed back serves the next secret: %v", err)
	}

	children["churn under best effort"] = func() {
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lowMemlock, Max: lowMemlock}) == nil, "setrlimit")
		memguard.SetLockPolicy(memguard.LockBestEffort)
		total, unlocked := churn(20000)
		fmt.Printf("allocations %d, unlocked %d\n", total, unlocked)
		check(unlocked == 0, "%d of %d allocations unlocked with a page to spare", unlocked, total)
	}

	children["churn under lock required"] = func() {
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lowMemlock, Max: lowMemlock}) == nil, "setrlimit")
		total, refused := churn(20000)
		fmt.Printf("allocations %d, refused %d\n", total, refused)
		check(refused == 0, "%d of %d allocations refused with a page to spare", refused, total)
	}
}

func TestLiveSecretsBeforeTheCache(t *testing.T) {
	for _, name := range []string{"best effort hands locks back", "churn under best effort", "churn under lock required"} {
		res := runChild(t, name, asNobody(t))
		assert.Equal(t, 0, res.exitCode, "%s: stdout: %s\nstderr: %s", name, res.stdout, res.stderr)
		t.Logf("%s: %s", name, strings.TrimSpace(res.stdout))
	}
}
