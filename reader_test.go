package memguard

import (
	"bytes"
	"errors"
	"io"
	"slices"
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

// maxAskReader records the most bytes any Read asked it for.
type maxAskReader struct {
	r      io.Reader
	maxAsk int
}

func (m *maxAskReader) Read(p []byte) (int, error) {
	m.maxAsk = max(m.maxAsk, len(p))
	return m.r.Read(p)
}

func TestNewBufferFromReaderUntil(t *testing.T) {
	// The scratch starts with one page, which holds page-16 bytes: a line
	// of twice that needs one growth, and 128 KiB several. Larger ones only
	// cost time, a Read per byte.
	grown := 2 * (int(pageSize) - canaryLen)
	sizes := slices.DeleteFunc(slices.Clone(testSizes), func(n int) bool { return n > 128<<10 })
	for _, n := range append(sizes, grown, grown+1, 128<<10) {
		line := bytes.Repeat([]byte("pass"), n/4+1)[:n]
		for name, mk := range map[string]func(io.Reader) io.Reader{
			"plain":    func(r io.Reader) io.Reader { return r },
			"one byte": iotest.OneByteReader,
			"data+EOF": iotest.DataErrReader,
		} {
			before := Stats().LiveBuffers
			src := &maxAskReader{r: mk(strings.NewReader(string(line) + "\nnext line\n"))}
			b, err := NewBufferFromReaderUntil(src, '\n')
			require.NoError(t, err, "%s %d", name, n)
			assert.False(t, b.Mutable())
			assert.Equal(t, line, read(t, b), "%s %d: the line, without its delimiter", name, n)
			assert.Equal(t, before+1, Stats().LiveBuffers, "scratch buffers destroyed")
			require.NoError(t, b.Destroy())
			assert.Equal(t, 1, src.maxAsk, "one byte per Read")
			rest, err := io.ReadAll(src)
			require.NoError(t, err)
			assert.Equal(t, "next line\n", string(rest), "%s %d: nothing read past the delimiter", name, n)
		}
	}
}

func TestNewBufferFromReaderUntilEdges(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		delim       byte
		want        string
	}{
		{"EOF before the delimiter", "no newline at the end", '\n', "no newline at the end"},
		{"CRLF keeps the CR", "secret\r\nnext", '\n', "secret\r"},
		{"another delimiter", "user:password", ':', "user"},
		{"zero delimiter", "c-string\x00after", 0, "c-string"},
		{"only the first delimiter", "a\n\nb", '\n', "a"},
	} {
		b, err := NewBufferFromReaderUntil(strings.NewReader(tc.input), tc.delim)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, string(read(t, b)), tc.name)
		require.NoError(t, b.Destroy())
	}

	// An optional '\r' dropped as the doc comment says.
	b, err := NewBufferFromReaderUntil(strings.NewReader("secret\r\n"), '\n')
	require.NoError(t, err)
	var trimmed *Buffer
	require.NoError(t, b.WithData(func(data []byte) error {
		trimmed, err = NewBufferFromBytes(bytes.TrimSuffix(data, []byte("\r")))
		return err
	}))
	require.NoError(t, b.Destroy())
	assert.Equal(t, "secret", string(read(t, trimmed)))
	require.NoError(t, trimmed.Destroy())

	// A size limit as the doc comment says: the line is cut, never
	// silently accepted short.
	const limit = 8
	for input, ok := range map[string]bool{"12345678\n": true, "12345678": true, "123456789\n": false} {
		b, err := NewBufferFromReaderUntil(io.LimitReader(strings.NewReader(input), limit+1), '\n')
		require.NoError(t, err, input)
		assert.Equal(t, ok, b.Size() <= limit, input)
		require.NoError(t, b.Destroy())
	}

	// Options apply to the result.
	b, err = NewBufferFromReaderUntil(strings.NewReader("hidden\n"), '\n', NoAccessWhenIdle())
	require.NoError(t, err)
	assert.True(t, b.secluded)
	assert.Equal(t, "hidden", string(read(t, b)))
	require.NoError(t, b.Destroy())
}

func TestNewBufferFromReaderUntilFailures(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		r       io.Reader
		opts    []Option
		want    error
		wantEOF bool
	}{
		{name: "nil reader", want: ErrInvalidArgument},
		{name: "empty", r: strings.NewReader(""), want: ErrInvalidSize, wantEOF: true},
		{name: "empty, EOF with no data", r: iotest.DataErrReader(strings.NewReader("")), want: ErrInvalidSize, wantEOF: true},
		{name: "delimiter first", r: strings.NewReader("\nsecret\n"), want: ErrInvalidSize},
		{name: "fails midway", r: io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), want: boom},
		{name: "fails after growing", r: io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{'x'}, 9000)), iotest.ErrReader(boom)), want: boom},
		{name: "count too large", r: countReader{n: 2}, want: ErrInvalidArgument},
		{name: "negative count", r: countReader{n: -1}, want: ErrInvalidArgument},
		{name: "no progress", r: countReader{}, want: io.ErrNoProgress},
		{name: "bad options", r: strings.NewReader("x\n"), opts: []Option{Compact(), NoAccessWhenIdle()}, want: ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := Stats().LiveBuffers
			b, err := NewBufferFromReaderUntil(tc.r, '\n', tc.opts...)
			assert.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.wantEOF, errors.Is(err, io.EOF), "%v", err)
			assert.Nil(t, b)
			assert.Equal(t, before, Stats().LiveBuffers, "nothing left live")
		})
	}
}
