//go:build cgo

package memguard

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitForQueuedReaper waits until the reaper started for s, if one was,
// has gone as far as it can while s's users are inside: reapWhenIdle
// waits between its tries. (A goroutine just started may be missing from
// a dump: so wait to see it blocked.)
func waitForQueuedReaper(t *testing.T, s *bufferState) {
	t.Helper()
	if !s.flag(flagReaping) {
		return
	}
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, "reapWhenIdle") &&
				(strings.Contains(header, "[sync.") || strings.Contains(header, "[sleep")) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatal("the reaper never blocked")
}

// A Buffer that Purge kills while a callback uses it is freed when the
// callback returns (Purge's documentation; TestPurgeCompact and
// TestPurgeConcurrentWithEverything count on it): by then it is neither
// counted in Stats nor mapped. And a Purge that runs when no callback
// holds any Buffer frees every Buffer. GOMAXPROCS(1) keeps any reaper
// from running until the test yields.
func TestPurgedInUseFreedWhenCallbackReturns(t *testing.T) {
	for name, opts := range map[string][]Option{
		"guarded": nil,
		"compact": {Compact()},
	} {
		t.Run(name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			Purge()
			before := Stats()
			b, err := NewBuffer(16, opts...)
			require.NoError(t, err)
			defer b.Destroy()
			freed := func() bool {
				b.protMu.Lock()
				defer b.protMu.Unlock()
				_, held := b.memoryRange()
				return !held
			}
			err = b.WithData(func([]byte) error {
				Purge()
				waitForQueuedReaper(t, b.bufferState)
				return nil
			})
			require.ErrorIs(t, err, ErrDestroyed)
			after := Stats()
			gone := freed()
			Purge() // nothing is in use: everything goes now
			afterPurge := Stats()
			goneAfterPurge := freed()

			assert.Equal(t, before.LiveBuffers, after.LiveBuffers, "LiveBuffers when the callback returned")
			assert.Equal(t, before.CompactBuffers, after.CompactBuffers, "CompactBuffers when the callback returned")
			assert.True(t, gone, "memory held when the callback returned")
			assert.Equal(t, before.LiveBuffers, afterPurge.LiveBuffers, "LiveBuffers after a Purge with no user inside")
			assert.True(t, goneAfterPurge, "memory held after a Purge with no user inside")
		})
	}
}

// A call on a Buffer that Purge killed while a callback used it returns
// ErrDestroyed at once: it does not wait, behind a writer queued to free
// the Buffer, for the first callback to end. A callback that waits for
// another goroutine's call on the same Buffer (many WithData calls may
// run at once) would otherwise never end.
func TestCallOnBufferPurgedInUseDoesNotWait(t *testing.T) {
	for name, call := range map[string]func(b *Buffer) error{
		"WithData": func(b *Buffer) error { return b.WithData(func([]byte) error { return nil }) },
		"Verify":   (*Buffer).Verify,
		"EqualTo":  func(b *Buffer) error { _, err := b.EqualTo(make([]byte, 16)); return err },
		"Freeze":   (*Buffer).Freeze,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := NewBuffer(16)
			require.NoError(t, err)
			defer b.Destroy()
			var second error
			blocked := false
			err = b.WithData(func([]byte) error {
				Purge()
				waitForQueuedReaper(t, b.bufferState)
				done := make(chan error, 1)
				go func() { done <- call(b) }()
				select {
				case second = <-done:
				case <-time.After(2 * time.Second):
					blocked = true
				}
				return nil
			})
			assert.ErrorIs(t, err, ErrDestroyed)
			require.False(t, blocked, "a call on a purged Buffer waits for another caller's callback")
			assert.ErrorIs(t, second, ErrDestroyed)
		})
	}
}
