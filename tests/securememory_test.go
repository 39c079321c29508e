package tests

import (
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/securememory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func mustSecret(b []byte) securememory.Secret {
	s, err := new(securememory.Factory).New(b)
	if err != nil {
		panic(err)
	}
	return s
}

func init() {
	children["secret write inside WithBytes"] = func() {
		s := mustSecret([]byte("read only"))
		_ = s.WithBytes(func(b []byte) error {
			pokeAt(unsafe.Pointer(unsafe.SliceData(b)))
			return nil
		})
	}
	children["secret read while idle"] = func() {
		s := mustSecret([]byte("no access when idle"))
		var kept []byte
		_ = s.WithBytes(func(b []byte) error { kept = b; return nil })
		fmt.Printf("poke=%#x\n", uintptr(unsafe.Pointer(unsafe.SliceData(kept))))
		fmt.Println("read", kept[0]) // must fault: the page is PROT_NONE again
	}
	children["secrets under low memlock"] = func() {
		lim := unix.Rlimit{Cur: lowMemlock, Max: lowMemlock}
		check(unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim) == nil, "setrlimit")
		var held []securememory.Secret
		for i := 0; i < 1000; i++ {
			s, err := new(securememory.Factory).CreateRandom(32)
			if err != nil {
				check(s == nil, "nil secret on error")
				check(errors.Is(err, memguard.ErrMemoryLock), "ErrMemoryLock, got %v", err)
				fmt.Printf("limit hit after %d secrets: %v\n", len(held), err)
				for _, h := range held {
					check(h.WithBytes(func([]byte) error { return nil }) == nil, "earlier secret intact")
				}
				return
			}
			held = append(held, s)
		}
		check(false, "the limit was never hit")
	}
}

func TestSecretIsReadOnly(t *testing.T) {
	assertFaultedAtPoke(t, runChild(t, "secret write inside WithBytes"))
}

func TestSecretIsNoAccessWhenIdle(t *testing.T) {
	res := runChild(t, "secret read while idle")
	assertFaultedAtPoke(t, res)
	assert.NotContains(t, res.stdout, "read ", "the read returned instead of faulting")
}

func TestSecretPageFlags(t *testing.T) {
	s := mustSecret([]byte("flags"))
	defer s.Close()
	var addr uintptr
	require.NoError(t, s.WithBytes(func(b []byte) error {
		addr = uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		assert.Equal(t, "r--p", mappingAt(t, readSmaps(t), addr).perms, "readable inside WithBytes")
		return nil
	}))
	idle := mappingAt(t, readSmaps(t), addr)
	assert.Equal(t, "---p", idle.perms, "no access when idle")
	assert.Contains(t, idle.flags, "lo", "still locked")
}

func TestSecretsUnderLowMemlock(t *testing.T) {
	res := runChild(t, "secrets under low memlock", asNobody(t))
	require.Equal(t, 0, res.exitCode, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "limit hit after")
	assert.NotContains(t, res.stderr, "panic")
}
