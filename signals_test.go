package memguard

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The order CatchSignal promises: handler, then purge, then exit(1). The
// child-process tests in tests/ see the real exit status; this one sees the
// purge, which a process that has exited cannot show.
func TestCatchSignalPurgesBeforeExit(t *testing.T) {
	exited := make(chan int, 1)
	var liveAtExit int
	exit = func(code int) {
		liveAtExit = Stats().LiveBuffers
		exited <- code
	}
	defer func() {
		exit = os.Exit
		catcher.mu.Lock()
		stopCatching()
		catcher.mu.Unlock()
	}()

	b, err := NewBufferFromBytes([]byte("held at the signal"))
	require.NoError(t, err)
	var aliveInHandler bool
	CatchSignal(func(os.Signal) { aliveInHandler = b.Alive() }, syscall.SIGUSR1)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))

	select {
	case code := <-exited:
		assert.Equal(t, 1, code)
	case <-time.After(30 * time.Second):
		t.Fatal("the catcher never exited")
	}
	assert.True(t, aliveInHandler, "the handler runs before the purge")
	assert.False(t, b.Alive(), "purged before the exit")
	assert.Zero(t, liveAtExit, "nothing live at exit")
}
