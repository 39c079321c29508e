package securememory

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/securememory/memguard"
)

type secret struct {
	buf *memguard.Buffer
	// closed is apart from the secret so that the cleanup can hold it
	// without keeping the secret, or its Buffer, reachable.
	closed *atomic.Bool
}

func newSecret(buf *memguard.Buffer) Secret {
	AllocCounter.add(1)
	InUseCounter.add(1)
	s := &secret{buf: buf, closed: new(atomic.Bool)}
	runtime.AddCleanup(s, closeDropped, s.closed)
	return s
}

// closeDropped closes a Secret that became unreachable without Close, as
// Asherah's finalizer does: InUseCounter moves down, and its Buffer, which
// became unreachable with it, is wiped and freed by memguard's own cleanup
// (counted in memguard.Stats().Reclaimed).
func closeDropped(closed *atomic.Bool) {
	if closed.CompareAndSwap(false, true) {
		InUseCounter.add(-1)
	}
}

func (s *secret) WithBytes(action func([]byte) error) error {
	_, err := s.withBytes(action)
	return err
}

// withBytes is WithBytes, and reports whether memguard.Purge destroyed the
// secret after action started: what action saw may then have been zeros,
// and what it made of them is the caller's to drop.
func (s *secret) withBytes(action func([]byte) error) (wiped bool, err error) {
	if s.closed.Load() {
		return false, ErrClosed
	}
	called := false
	var actionErr error
	err = s.buf.WithData(func(b []byte) error {
		called = true
		actionErr = action(b)
		return actionErr
	})
	// Close waits for WithBytes calls, so a Buffer that died during one
	// was purged.
	switch {
	case !errors.Is(err, memguard.ErrDestroyed) || s.buf.Alive():
		return false, err
	case !called:
		return false, ErrClosed
	case actionErr == nil:
		return true, ErrClosed
	}
	return true, fmt.Errorf("%w: %w", ErrClosed, actionErr)
}

func (s *secret) WithBytesFunc(action func([]byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	wiped, err := s.withBytes(func(b []byte) error {
		var err error
		out, err = action(b)
		return err
	})
	if wiped {
		return nil, err
	}
	return out, err
}

func (s *secret) IsClosed() bool { return s.closed.Load() || !s.buf.Alive() }

func (s *secret) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	InUseCounter.add(-1)
	return s.buf.Destroy()
}

func (s *secret) NewReader() io.Reader { return &reader{s: s} }

// readHook is nil except in tests, which set it to be called inside a
// reader's Read right after the copy, while the secret is held, so that a
// test can Purge at exactly that point. Loaded atomically because Reads on
// other goroutines load it while a test sets it.
var readHook atomic.Pointer[func()]

// reader reads a Secret's bytes, each Read inside WithBytes, so Close can
// never free the memory under it.
type reader struct {
	mu  sync.Mutex
	s   *secret
	off int
}

// Read returns io.EOF with the last bytes, as Asherah's reader does, and
// again on every later call. The callback always returns nil, so that a
// Purge during the copy still reaches the caller as an error.
func (r *reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, atEnd := 0, false
	wiped, err := r.s.withBytes(func(b []byte) error {
		n = copy(p, b[min(r.off, len(b)):])
		atEnd = r.off+n >= len(b)
		if h := readHook.Load(); h != nil {
			(*h)()
		}
		return nil
	})
	if wiped {
		// What was copied may be zeros: none of it counts as read, and
		// what was copied is not left behind.
		memguard.WipeBytes(p[:n])
		return 0, ErrClosed
	}
	r.off += n
	if err == nil && atEnd {
		err = io.EOF
	}
	return n, err
}
