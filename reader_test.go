package memguard

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countReader returns a fixed count (possibly a lie) and error from Read.
type countReader struct {
	n   int
	err error
}

func (r countReader) Read([]byte) (int, error) { return r.n, r.err }

func TestNewBufferFromReader(t *testing.T) {
	for _, n := range testSizes {
		src := pattern(n)
		for name, r := range map[string]io.Reader{
			"plain":    bytes.NewReader(src),
			"one byte": iotest.OneByteReader(bytes.NewReader(src)),
			"data+EOF": iotest.DataErrReader(bytes.NewReader(src)),
			"longer":   io.MultiReader(bytes.NewReader(src), strings.NewReader("more")),
		} {
			b, err := NewBufferFromReader(r, n)
			require.NoError(t, err, "%s %d", name, n)
			assert.False(t, b.Mutable())
			assert.Equal(t, src, read(t, b), "%s %d", name, n)
			require.NoError(t, b.Destroy())
		}
	}
}

func TestNewBufferFromReaderFailures(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		r    io.Reader
		size int
		want error
	}{
		{"nil reader", nil, 8, ErrInvalidArgument},
		{"empty", strings.NewReader(""), 8, io.ErrUnexpectedEOF},
		{"short", strings.NewReader("abc"), 8, io.ErrUnexpectedEOF},
		{"short one byte at a time", iotest.OneByteReader(strings.NewReader("abc")), 8, io.ErrUnexpectedEOF},
		{"fails midway", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), 8, boom},
		{"timeout", iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader("abcdefgh"))), 8, iotest.ErrTimeout},
		{"count too large", countReader{n: 9}, 8, ErrInvalidArgument},
		{"negative count", countReader{n: -1}, 8, ErrInvalidArgument},
		{"no progress", countReader{}, 8, io.ErrNoProgress},
		{"zero size", strings.NewReader("abc"), 0, ErrInvalidSize},
		{"negative size", strings.NewReader("abc"), -3, ErrInvalidSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := Stats().LiveBuffers
			b, err := NewBufferFromReader(tc.r, tc.size)
			assert.ErrorIs(t, err, tc.want)
			assert.Nil(t, b)
			assert.Equal(t, before, Stats().LiveBuffers, "nothing left live")
		})
	}
}

func TestNewBufferFromEntireReader(t *testing.T) {
	// The reader starts with one page, which holds page-16 bytes: twice
	// that needs one growth.
	grown := 2 * (int(pageSize) - canaryLen)
	for _, n := range append(testSizes, grown, grown+1, 5<<20) {
		src := pattern(n)
		for name, r := range map[string]io.Reader{
			"plain":    bytes.NewReader(src),
			"data+EOF": iotest.DataErrReader(bytes.NewReader(src)),
			"half":     iotest.HalfReader(bytes.NewReader(src)),
		} {
			before := Stats().LiveBuffers
			b, err := NewBufferFromEntireReader(r)
			require.NoError(t, err, "%s %d", name, n)
			assert.Equal(t, n, b.Size())
			assert.False(t, b.Mutable())
			assert.Equal(t, src, read(t, b), "%s %d", name, n)
			assert.Equal(t, before+1, Stats().LiveBuffers, "scratch buffers destroyed")
			require.NoError(t, b.Destroy())
		}
	}
}

func TestNewBufferFromEntireReaderOneByte(t *testing.T) {
	src := pattern(10000) // crosses two growths
	b, err := NewBufferFromEntireReader(iotest.OneByteReader(bytes.NewReader(src)))
	require.NoError(t, err)
	assert.Equal(t, src, read(t, b))
	require.NoError(t, b.Destroy())
}

func TestNewBufferFromEntireReaderFailures(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		r    io.Reader
		want error
	}{
		{"nil reader", nil, ErrInvalidArgument},
		{"empty", strings.NewReader(""), ErrInvalidSize},
		{"fails at once", iotest.ErrReader(boom), boom},
		{"fails after growing", io.MultiReader(bytes.NewReader(pattern(9000)), iotest.ErrReader(boom)), boom},
		{"count too large", countReader{n: 1 << 20}, ErrInvalidArgument},
		{"no progress", countReader{}, io.ErrNoProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := Stats().LiveBuffers
			b, err := NewBufferFromEntireReader(tc.r)
			assert.ErrorIs(t, err, tc.want)
			assert.Nil(t, b)
			assert.Equal(t, before, Stats().LiveBuffers, "nothing left live")
		})
	}
}
