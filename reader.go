//go:build cgo

package memguard

import (
	"fmt"
	"io"
)

// maxEmptyReads bounds how often a reader may return (0, nil) in a row
// before it is taken to be stuck, as bufio does.
const maxEmptyReads = 100

// NewBufferFromReader reads exactly size bytes from r straight into a new
// frozen Buffer, protected as opts (or the defaults) say. If r ends early,
// the error wraps io.ErrUnexpectedEOF; if r fails, it wraps r's error.
// Either way what was read is wiped and no Buffer is returned.
func NewBufferFromReader(r io.Reader, size int, opts ...Option) (*Buffer, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrInvalidArgument)
	}
	st, err := storageFor(opts)
	if err != nil {
		return nil, err
	}
	return newFrozenBuffer(size, st, func(data []byte) error {
		n, err := readInto(r, data)
		if n == len(data) {
			return nil
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("memguard: read %d of %d bytes: %w", n, len(data), err)
	})
}

// NewBufferFromEntireReader reads r to EOF into a new frozen Buffer,
// protected as opts (or the defaults) say. The input grows inside protected
// memory of the same kind, doubling its capacity, so no byte of it passes
// through the Go heap and the copying is linear. Empty input gives
// ErrInvalidSize.
func NewBufferFromEntireReader(r io.Reader, opts ...Option) (*Buffer, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrInvalidArgument)
	}
	st, err := storageFor(opts)
	if err != nil {
		return nil, err
	}
	// Capacities fill whole pages: k pages hold k*page - canaryLen bytes.
	// The scratch is never hidden between reads: only this call has it.
	grown := storage{class: st.class, fallback: st.fallback}
	scratch, err := newBuffer(regionPagesFor(1)-canaryLen, grown)
	if err != nil {
		return nil, err
	}
	defer func() { scratch.Destroy() }()
	n := 0
	for {
		var readErr error
		err := scratch.WithDataMut(func(data []byte) error {
			var m int
			m, readErr = readInto(r, data[n:])
			n += m
			return nil
		})
		if err != nil {
			return nil, err
		}
		if readErr == io.EOF {
			break
		}
		if readErr != nil {
			return nil, fmt.Errorf("memguard: read failed after %d bytes: %w", n, readErr)
		}
		if scratch, err = grow(scratch, n, grown); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: reader was empty", ErrInvalidSize)
	}
	return newFrozenBuffer(n, st, func(data []byte) error {
		return scratch.WithData(func(src []byte) error {
			copy(data, src[:n])
			return nil
		})
	})
}

// grow moves the first n bytes of old into a Buffer stored as st with
// twice its pages, and destroys old. On error old is destroyed too.
func grow(old *Buffer, n int, st storage) (*Buffer, error) {
	defer old.Destroy()
	bigger, err := newBuffer(2*regionPagesFor(old.size)-canaryLen, st)
	if err != nil {
		return nil, err
	}
	err = old.WithData(func(src []byte) error {
		return bigger.WithDataMut(func(dst []byte) error {
			copy(dst, src[:n])
			return nil
		})
	})
	if err != nil {
		bigger.Destroy()
		return nil, err
	}
	return bigger, nil
}

// readInto reads from r until buf is full, r returns an error (io.EOF
// included), or r stops making progress. Unlike io.ReadFull it does not
// trust r's counts.
func readInto(r io.Reader, buf []byte) (int, error) {
	n, empty := 0, 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		if m < 0 || m > len(buf)-n {
			return n, fmt.Errorf("%w: reader returned count %d for %d bytes", ErrInvalidArgument, m, len(buf)-n)
		}
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			if empty++; empty >= maxEmptyReads {
				return n, io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
	return n, nil
}
