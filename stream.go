//go:build cgo

package memguard

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultChunkSize is a Stream's chunk size unless WithChunkSize says
// otherwise: four pages.
const DefaultChunkSize = 16 << 10

// Stream is an encrypted io.Reader and io.Writer of secret data: what is
// written is sealed in chunks into Enclaves, and read back by opening them.
// A Stream is safe for concurrent use. The zero Stream is empty and ready
// to use, with DefaultChunkSize; a nil *Stream is empty, and Write to it
// gives ErrInvalidArgument.
type Stream struct {
	mu        sync.Mutex
	chunks    []*Enclave // the front is read first
	size      int
	chunkSize int // 0: DefaultChunkSize; below 0: refused by every call
}

// StreamOption configures NewStream.
type StreamOption func(*Stream)

// WithChunkSize sets the most plaintext bytes sealed into one Enclave.
// Zero keeps DefaultChunkSize. A negative size makes every call of the
// Stream that returns an error (Write, Read, Next, Flush) fail with
// ErrInvalidArgument, since NewStream returns no error.
func WithChunkSize(n int) StreamOption {
	return func(s *Stream) { s.chunkSize = n }
}

// NewStream returns an empty Stream.
func NewStream(opts ...StreamOption) *Stream {
	s := &Stream{chunkSize: DefaultChunkSize}
	for _, opt := range opts {
		if opt != nil {
			opt(s)
		}
	}
	return s
}

// configError reports a chunk size the Stream cannot use. The caller
// holds mu.
func (s *Stream) configError() error {
	if s.chunkSize < 0 {
		return fmt.Errorf("%w: negative chunk size %d given to WithChunkSize", ErrInvalidArgument, s.chunkSize)
	}
	return nil
}

// Write seals p, chunk by chunk, and wipes each chunk of p once it is
// sealed. If sealing fails it returns how many bytes were taken; the rest
// of p is left as it was.
func (s *Stream) Write(p []byte) (int, error) {
	if s == nil {
		return 0, fmt.Errorf("%w: nil Stream", ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.configError(); err != nil {
		return 0, err
	}
	n := 0
	size := s.chunkSize
	if size == 0 {
		size = DefaultChunkSize
	}
	for n < len(p) {
		chunk := p[n:min(len(p), n+size)]
		e, err := NewEnclave(chunk)
		if err != nil {
			return n, err
		}
		s.chunks = append(s.chunks, e)
		s.size += len(chunk)
		n += len(chunk)
	}
	return n, nil
}

// Read opens chunks into p until p is full or the Stream is empty, which
// gives io.EOF. A chunk only partly read is sealed again, remainder only,
// straight from protected memory. Chunks sealed before a Purge fail with
// ErrDecryption; so does a chunk that a Purge wipes while it is being read,
// and then the bytes of it already copied into p are wiped and the chunk
// stays in the Stream as it was.
func (s *Stream) Read(p []byte) (int, error) {
	if s == nil {
		return 0, io.EOF
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.configError(); err != nil {
		return 0, err
	}
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && len(s.chunks) > 0 {
		k, rest, err := readChunk(s.chunks[0], p[n:])
		if err != nil {
			return n, err
		}
		if rest != nil {
			s.chunks[0] = rest
		} else {
			s.popFront()
		}
		n += k
		s.size -= k
	}
	return n, nil
}

// readChunk opens e and copies it into p; if p is too short, rest is the
// remainder, sealed again. Either all of it happens or none: on error what
// was copied into p is wiped.
func readChunk(e *Enclave, p []byte) (k int, rest *Enclave, err error) {
	b, err := e.Open()
	if err != nil {
		return 0, nil, err
	}
	defer b.Destroy()
	err = b.WithData(func(data []byte) error {
		k = copy(p, data)
		testPoint("Stream.Read")
		if k < len(data) {
			rest, err = seal(data[k:], e.suite)
			return err
		}
		return nil
	})
	// Purges during the Read: one wiped the opened chunk (ErrDestroyed),
	// or each seal of the remainder found its key purged until seal gave
	// up (ErrCofferDestroyed).
	if errors.Is(err, ErrDestroyed) || errors.Is(err, ErrCofferDestroyed) {
		err = fmt.Errorf("%w: purged during Read: %w", ErrDecryption, err)
	}
	if err != nil {
		wipeBytes(p[:k])
		return 0, nil, err
	}
	return k, rest, nil
}

// Next opens the next chunk into a frozen Buffer and removes it from the
// Stream. An empty Stream gives io.EOF.
func (s *Stream) Next() (*Buffer, error) {
	if s == nil {
		return nil, io.EOF
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.configError(); err != nil {
		return nil, err
	}
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	b, err := s.chunks[0].Open()
	if err != nil {
		return nil, err
	}
	s.size -= s.chunks[0].Size()
	s.popFront()
	return b, nil
}

// Flush opens everything left into one frozen Buffer and empties the
// Stream. An empty Stream gives io.EOF. If a chunk fails to open, nothing
// is removed.
func (s *Stream) Flush() (*Buffer, error) {
	if s == nil {
		return nil, io.EOF
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.configError(); err != nil {
		return nil, err
	}
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	// Each chunk is decrypted straight into its place in the result.
	b, err := decryptToBuffer(s.size, nil, func(dst []byte) error {
		for _, e := range s.chunks {
			if err := e.openInto(dst[:e.size]); err != nil {
				return err
			}
			dst = dst[e.size:]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	clear(s.chunks)
	s.chunks, s.size = s.chunks[:0], 0
	return b, nil
}

// Size is the number of plaintext bytes in the Stream.
func (s *Stream) Size() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

func (s *Stream) popFront() {
	s.chunks[0] = nil
	s.chunks = s.chunks[1:]
}
