//go:build linux

package tests

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/internal/memscan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func init() {
	// Unprivileged, under a 64 KiB RLIMIT_MEMLOCK and the default
	// LockRequired: compact secrets of 32, then 64 bytes, until the
	// kernel refuses. No Purge between the two: the 64-byte secrets must
	// find the room that the destroyed 32-byte ones left, in slots the
	// library cached for reuse and chunks it kept, which it gives back
	// when the kernel refuses a lock.
	children["compact low memlock"] = func() {
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lowMemlock, Max: lowMemlock}) == nil, "setrlimit")
		for _, size := range []int{32, 64} {
			secret := func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, size) }
			var held []*memguard.Buffer
			var lockErr error
			for i := 0; i < 10000; i++ {
				b, err := memguard.NewBufferFromBytes(secret(i), memguard.Compact())
				if err != nil {
					check(b == nil, "nil buffer on error")
					lockErr = err
					break
				}
				held = append(held, b)
			}
			check(errors.Is(lockErr, memguard.ErrMemoryLock), "ErrMemoryLock, got %v", lockErr)
			check(errors.Is(lockErr, syscall.ENOMEM) || errors.Is(lockErr, syscall.EAGAIN) || errors.Is(lockErr, syscall.EPERM), "errno kept: %v", lockErr)
			for _, want := range []string{"65536", "ulimit -l", "LockBestEffort", "CAP_IPC_LOCK"} {
				check(strings.Contains(lockErr.Error(), want), "message names %q: %v", want, lockErr)
			}
			for i, b := range held {
				ok, err := b.EqualTo(secret(i))
				check(err == nil && ok && b.Locked(), "secret %d intact and locked after the failure: %v", i, err)
			}
			s := memguard.Stats()
			check(s.UnlockedBuffers == 0 && s.CompactBuffers == len(held), "all compact and locked: %+v", s)
			check(uint64(s.LockedBytes) <= lowMemlock, "locked bytes within the limit: %+v", s)
			fmt.Printf("compact %d-byte secrets held: %d\n", size, len(held))
			if size == 64 {
				// Best effort settles for unlocked slots, counted so.
				memguard.SetLockPolicy(memguard.LockBestEffort)
				failures := memguard.Stats().LockFailures
				for i := 0; i < 64; i++ {
					b, err := memguard.NewBufferFromBytes(secret(i), memguard.Compact())
					check(err == nil, "best effort allocation %d: %v", i, err)
					held = append(held, b)
				}
				s := memguard.Stats()
				check(s.UnlockedBuffers > 0 && s.LockFailures > failures, "unlocked slots counted: %+v", s)
				check(uint64(s.LockedBytes) <= lowMemlock, "locked bytes within the limit: %+v", s)
				memguard.SetLockPolicy(memguard.LockRequired)
				fmt.Println("compact best effort beyond the limit: ok")
			}
			for _, b := range held {
				check(b.Destroy() == nil, "destroy")
			}
		}
		memguard.Purge() // the cached slots and the arenas' spare chunks
		check(memguard.Stats().LockedBytes == 0, "nothing locked after Purge: %+v", memguard.Stats())
	}
}

// An unprivileged process under a 64 KiB RLIMIT_MEMLOCK holds at least 800
// live 32-byte, and 500 live 64-byte, compact secrets, all locked.
func TestCompactLowMemlock(t *testing.T) {
	res := runChild(t, "compact low memlock", asNobody(t))
	require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	t.Log(strings.TrimSpace(res.stdout))
	for size, least := range map[int]int{32: 800, 64: 500} {
		var n int
		for _, line := range strings.Split(res.stdout, "\n") {
			if _, err := fmt.Sscanf(line, fmt.Sprintf("compact %d-byte secrets held: %%d", size), &n); err == nil {
				break
			}
		}
		assert.GreaterOrEqual(t, n, least, "%d-byte compact secrets under 64 KiB", size)
	}
	assert.Contains(t, res.stdout, "compact best effort beyond the limit: ok")
	assert.Contains(t, res.stdout, survivedMarker)
}

// Compact secrets, destroyed, sealed and left live for Purge, leave no
// copy in process memory.
func TestNoResidueCompact(t *testing.T) {
	const size = 48
	require.NoError(t, memguard.SetDefaultOptions(memguard.Compact()))
	defer memguard.SetDefaultOptions()
	refs := memscan.Private(t, 3*size)
	secret := func(i int) []byte { return refs[i*size : (i+1)*size] }
	require.NoError(t, memguard.ScrambleBytes(refs))
	scratch := memscan.Private(t, size)

	var live []*memguard.Buffer
	for i := range 3 {
		copy(scratch, secret(i))
		b, err := memguard.NewBufferFromBytes(scratch)
		require.NoError(t, err)
		live = append(live, b)
	}
	e, err := live[0].Seal()
	require.NoError(t, err)
	opened, err := e.Open()
	require.NoError(t, err)
	ok, err := opened.EqualTo(secret(0))
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, live[1].Destroy())
	// live[2] and opened stay live: Purge wipes them.
	require.Equal(t, 2, memguard.Stats().CompactBuffers)
	memguard.Purge()
	assert.False(t, opened.Alive() || live[2].Alive())

	needles := [][]byte{secret(0), secret(1), secret(2)}
	exclude := []memscan.Span{memscan.SpanOf(refs), memscan.SpanOf(scratch)}
	hits, err := memscan.Find(needles, exclude)
	require.NoError(t, err)
	assert.Empty(t, hits, "compact secrets left in process memory")
}
