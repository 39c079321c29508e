package securememory

import (
	"errors"
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
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.buf.WithData(action)
	if errors.Is(err, memguard.ErrDestroyed) && !s.buf.Alive() {
		return ErrClosed
	}
	return err
}

func (s *secret) WithBytesFunc(action func([]byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	err := s.WithBytes(func(b []byte) error {
		var err error
		out, err = action(b)
		return err
	})
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
	err := r.s.WithBytes(func(b []byte) error {
		n = copy(p, b[min(r.off, len(b)):])
		atEnd = r.off+n >= len(b)
		return nil
	})
	r.off += n
	if err == nil && atEnd {
		err = io.EOF
	}
	return n, err
}
