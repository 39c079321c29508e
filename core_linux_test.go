//go:build linux && (amd64 || arm64)

package memguard

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/securememory/memguard/internal/seccomp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Secret memory is locked by the kernel, with or without mapLock, and
// holds a secret like any other region.
func TestSecretRegion(t *testing.T) {
	for _, flags := range []mapFlags{mapSecret, mapSecret | mapLock} {
		r, err := newRegion(100, flags)
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("no secret memory here: %v", err)
		}
		require.NoError(t, err)
		assert.True(t, r.secret != 0)
		assert.Equal(t, int(r.pages_len), r.lockedBytes(), "locked")
		copy(r.bytes(), "secret")
		require.NoError(t, r.verify())
		require.NoError(t, r.free())
	}
}

// Where memfd_secret is missing or filtered, a secret region is
// errors.ErrUnsupported with the kernel's errno.
func TestSecretRegionUnsupported(t *testing.T) {
	const child = "MEMGUARD_SECCOMP_CHILD"
	if os.Getenv(child) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSecretRegionUnsupported$", "-test.v")
		cmd.Env = append(os.Environ(), child+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: TestSecretRegionUnsupported")
		return
	}
	require.NoError(t, seccomp.Refuse(unix.SYS_MEMFD_SECRET, nil, syscall.ENOSYS))
	_, err := newRegion(100, mapSecret)
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	assert.ErrorIs(t, err, syscall.ENOSYS)
}
