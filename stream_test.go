package memguard

import (
	"bytes"
	"io"
	"reflect"
	"sort"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func filledStream(t *testing.T, content []byte, opts ...StreamOption) *Stream {
	t.Helper()
	s := NewStream(opts...)
	src := bytes.Clone(content)
	n, err := s.Write(src)
	require.NoError(t, err)
	require.Equal(t, len(content), n)
	assert.Equal(t, make([]byte, len(content)), src, "Write wipes the caller's slice")
	assert.Equal(t, len(content), s.Size())
	return s
}

func TestStreamIotest(t *testing.T) {
	for _, chunk := range []int{1, 7, 64, DefaultChunkSize} {
		content := pattern(3000)
		assert.NoError(t, iotest.TestReader(filledStream(t, content, WithChunkSize(chunk)), content), "chunk %d", chunk)
	}
}

func TestStreamChunkSizeApplies(t *testing.T) {
	s := filledStream(t, pattern(100), WithChunkSize(16))
	assert.Len(t, s.chunks, 7)
	b, err := s.Next()
	require.NoError(t, err)
	assert.Equal(t, pattern(100)[:16], read(t, b))
	assert.False(t, b.Mutable())
	require.NoError(t, b.Destroy())
	assert.Equal(t, 84, s.Size())

	def := filledStream(t, pattern(DefaultChunkSize+1), WithChunkSize(0))
	assert.Len(t, def.chunks, 2, "zero keeps the default")
	last := filledStream(t, pattern(10), WithChunkSize(-1), WithChunkSize(4))
	assert.Len(t, last.chunks, 3, "the last WithChunkSize counts")
}

// A negative chunk size, which NewStream cannot return as an error, is
// reported by every call that can, before anything else happens.
func TestStreamNegativeChunkSize(t *testing.T) {
	s := NewStream(WithChunkSize(-5))
	src := pattern(10)
	n, err := s.Write(src)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Contains(t, err.Error(), "-5")
	assert.Zero(t, n)
	assert.Equal(t, pattern(10), src, "nothing taken, nothing wiped")
	n, err = s.Read(make([]byte, 4))
	assert.ErrorIs(t, err, ErrInvalidArgument, "not io.EOF")
	assert.Zero(t, n)
	b, err := s.Next()
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Nil(t, b)
	b, err = s.Flush()
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Nil(t, b)
	assert.Zero(t, s.Size())
	_, err = io.ReadAll(s)
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

func TestStreamPartialReadReseals(t *testing.T) {
	s := filledStream(t, pattern(50), WithChunkSize(20))
	p := make([]byte, 7)
	n, err := s.Read(p)
	require.NoError(t, err)
	assert.Equal(t, 7, n)
	assert.Equal(t, pattern(50)[:7], p)
	assert.Equal(t, 43, s.Size())
	assert.Equal(t, 13, s.chunks[0].Size(), "the remainder was sealed again")
	rest, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Equal(t, pattern(50)[7:], rest)
	n, err = s.Read(p)
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, io.EOF)
}

func TestStreamFlushAndEmpty(t *testing.T) {
	s := filledStream(t, pattern(45), WithChunkSize(10))
	b, err := s.Next()
	require.NoError(t, err)
	require.NoError(t, b.Destroy())
	all, err := s.Flush()
	require.NoError(t, err)
	assert.Equal(t, pattern(45)[10:], read(t, all))
	assert.False(t, all.Mutable())
	require.NoError(t, all.Destroy())
	assert.Zero(t, s.Size())

	_, err = s.Flush()
	assert.ErrorIs(t, err, io.EOF)
	_, err = s.Next()
	assert.ErrorIs(t, err, io.EOF)
	n, err := s.Write(nil)
	assert.NoError(t, err)
	assert.Zero(t, n)
}

func TestStreamAfterPurge(t *testing.T) {
	s := filledStream(t, pattern(30), WithChunkSize(8))
	Purge()
	_, err := s.Read(make([]byte, 4))
	assert.ErrorIs(t, err, ErrDecryption)
	_, err = s.Next()
	assert.ErrorIs(t, err, ErrDecryption)
	_, err = s.Flush()
	assert.ErrorIs(t, err, ErrDecryption)
	assert.Equal(t, 30, s.Size(), "nothing removed by a failed read")
}

func TestStreamConcurrent(t *testing.T) {
	s := NewStream(WithChunkSize(5))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				_, err := s.Write(bytes.Repeat([]byte{1}, 12))
				assert.NoError(t, err)
			}
		}()
		go func() {
			defer wg.Done()
			p := make([]byte, 9)
			for j := 0; j < 20; j++ {
				n, err := s.Read(p)
				if err != io.EOF {
					assert.NoError(t, err)
				}
				assert.Equal(t, bytes.Repeat([]byte{1}, n), p[:n])
			}
		}()
	}
	wg.Wait()
	rest, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{1}, len(rest)), rest)
	assert.Zero(t, s.Size())
}

func TestStreamMethodSet(t *testing.T) {
	var names []string
	typ := reflect.TypeOf(&Stream{})
	for i := 0; i < typ.NumMethod(); i++ {
		names = append(names, typ.Method(i).Name)
	}
	sort.Strings(names)
	assert.Equal(t, []string{"Flush", "Next", "Read", "Size", "Write"}, names, "nothing embedded leaks in")
}
