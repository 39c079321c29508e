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
	b, err := readGrowing(st, func(free []byte) (int, bool, error) {
		m, err := readInto(r, free)
		if err == io.EOF {
			return m, true, nil
		}
		return m, false, err
	})
	if err == nil && b == nil {
		err = fmt.Errorf("%w: reader was empty", ErrInvalidSize)
	}
	return b, err
}

// NewBufferFromReaderUntil reads r up to the first delim byte into a new
// frozen Buffer, protected as opts (or the defaults) say. The delimiter is
// consumed and left out. It is the way to read a passphrase line from
// os.Stdin: NewBufferFromReaderUntil(os.Stdin, '\n').
//
// It asks r for one byte at a time, so it never consumes input past the
// delimiter: what follows stays in r. On a terminal or pipe that is one
// system call per byte, which a passphrase does not notice. Do not wrap r
// in a bufio.Reader for speed: its buffer is Go heap memory, and keeps a
// copy of what it read. The input grows in protected memory as
// NewBufferFromEntireReader's does, each smaller copy wiped as it is left.
//
// Input that ends (io.EOF) before any delimiter counts as a whole line, as
// a file's last line without a newline does: the Buffer holds what was
// read and the error is nil. No input at all gives an error matching both
// ErrInvalidSize and io.EOF; a delimiter before any other byte (an empty
// line) gives ErrInvalidSize alone. Any other failure of r is wrapped in
// the error. On error, whatever was read is wiped and no Buffer is
// returned.
//
// Bytes are kept as they are: read with '\n', a line that ends in "\r\n"
// keeps its '\r' as the Buffer's last byte. To drop it, pass
// data[:len(data)-1] to NewBufferFromBytes from inside WithData, then
// destroy this Buffer.
//
// No size limit applies beyond the memory the process may lock
// (ErrMemoryLock or ErrOutOfMemory, with the input wiped). To set one, read
// from io.LimitReader(r, max+1) and reject a Buffer longer than max bytes:
// a line cut by the limit arrives as input ended without its delimiter.
func NewBufferFromReaderUntil(r io.Reader, delim byte, opts ...Option) (*Buffer, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrInvalidArgument)
	}
	st, err := storageFor(opts)
	if err != nil {
		return nil, err
	}
	atEOF := false
	b, err := readGrowing(st, func(free []byte) (int, bool, error) {
		for i := range free {
			m, err := readInto(r, free[i:i+1])
			if m == 1 && free[i] == delim {
				return i, true, nil
			}
			if err == io.EOF {
				atEOF = true
				return i + m, true, nil
			}
			if err != nil {
				return i + m, false, err
			}
		}
		return len(free), false, nil
	})
	switch {
	case err != nil || b != nil:
		return b, err
	case atEOF:
		return nil, fmt.Errorf("%w: reader was empty: %w", ErrInvalidSize, io.EOF)
	}
	return nil, fmt.Errorf("%w: delimiter %q before any other byte", ErrInvalidSize, delim)
}

// readGrowing returns a frozen Buffer stored as st holding what step reads.
// step reads into free, the unused rest of a scratch in protected memory of
// st's kind, and reports how many bytes it added and whether the input is
// complete; if it is not, the scratch must be full, and is moved into one
// with twice the pages (grow) before step is called again. Nothing read
// gives a nil Buffer and no error. An error from step is wrapped with the
// count read so far. The scratch is destroyed, and so wiped, in every case.
func readGrowing(st storage, step func(free []byte) (int, bool, error)) (*Buffer, error) {
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
		var done bool
		var readErr error
		err := scratch.WithDataMut(func(data []byte) error {
			var m int
			m, done, readErr = step(data[n:])
			n += m
			return nil
		})
		if err != nil {
			return nil, err
		}
		if readErr != nil {
			return nil, fmt.Errorf("memguard: read failed after %d bytes: %w", n, readErr)
		}
		if done {
			break
		}
		if scratch, err = grow(scratch, n, grown); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return nil, nil
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
