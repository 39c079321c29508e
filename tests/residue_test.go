//go:build linux

package tests

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/internal/memscan"
	"github.com/securememory/memguard/securememory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNoResidue(t *testing.T) {
	const size = 48
	refs := memscan.Private(t, 8*size)
	secret := func(i int) []byte { return refs[i*size : (i+1)*size] }
	require.NoError(t, memguard.ScrambleBytes(refs[:2*size])) // secrets 0 and 1 are random
	scratch := memscan.Private(t, 4*size)                     // sources the library wipes
	src := func(i int) []byte {
		s := scratch[i*size : (i+1)*size]
		copy(s, secret(0))
		return s
	}
	mustEqual := func(b *memguard.Buffer, want []byte) {
		ok, err := b.EqualTo(want)
		require.NoError(t, err)
		require.True(t, ok)
	}

	// From bytes, from readers.
	fromBytes, err := memguard.NewBufferFromBytes(src(0))
	require.NoError(t, err)
	assert.Equal(t, make([]byte, size), scratch[:size], "source wiped")
	fromReader, err := memguard.NewBufferFromReader(bytes.NewReader(secret(0)), size)
	require.NoError(t, err)
	fromEntire, err := memguard.NewBufferFromEntireReader(iotest.HalfReader(bytes.NewReader(secret(0))))
	require.NoError(t, err)
	_, err = memguard.NewBufferFromReader(io.MultiReader(bytes.NewReader(secret(0)[:20]), iotest.ErrReader(io.ErrClosedPipe)), size)
	require.Error(t, err) // a failed read wipes what it read
	delim := byte(0)
	for bytes.IndexByte(secret(0), delim) >= 0 {
		delim++ // a byte the random secret lacks
	}
	fromLine, err := memguard.NewBufferFromReaderUntil(io.MultiReader(bytes.NewReader(secret(0)), bytes.NewReader([]byte{delim, 'x'})), delim)
	require.NoError(t, err)
	for _, b := range []*memguard.Buffer{fromBytes, fromReader, fromEntire, fromLine} {
		mustEqual(b, secret(0))
	}

	// Random: its value is copied out to a reference to look for later.
	random, err := memguard.NewBufferRandom(size)
	require.NoError(t, err)
	require.NoError(t, random.WithData(func(d []byte) error { copy(secret(2), d); return nil }))

	// Seal, open, re-seal, open.
	enclave, err := fromBytes.Seal()
	require.NoError(t, err)
	opened, err := enclave.Open()
	require.NoError(t, err)
	mustEqual(opened, secret(0))
	resealed, err := opened.Seal()
	require.NoError(t, err)
	again, err := resealed.Open()
	require.NoError(t, err)
	mustEqual(again, secret(0))
	direct, err := memguard.NewEnclave(src(1))
	require.NoError(t, err)
	directOpened, err := direct.Open()
	require.NoError(t, err)
	mustEqual(directOpened, secret(0))
	randomEnclave, err := random.Seal()
	require.NoError(t, err)
	randomOpened, err := randomEnclave.Open()
	require.NoError(t, err)
	mustEqual(randomOpened, secret(2))

	// Secret 1 goes through WithDataMut and Melt/Freeze.
	mutable, err := memguard.NewBuffer(size)
	require.NoError(t, err)
	require.NoError(t, mutable.WithDataMut(func(d []byte) error { copy(d, secret(1)); return nil }))
	require.NoError(t, mutable.Freeze())
	require.NoError(t, mutable.Melt())
	mustEqual(mutable, secret(1))

	// A coffer's key, through WithKey and View.
	coffer, err := memguard.NewCoffer()
	require.NoError(t, err)
	require.NoError(t, coffer.WithKey(func(k []byte) error { copy(secret(3)[:32], k); return nil }))
	require.NoError(t, coffer.Rekey())
	view, err := coffer.View()
	require.NoError(t, err)
	mustEqual(view, secret(3)[:32])

	// A stream: chunked seal, a partial read that re-seals the rest, Flush.
	stream := memguard.NewStream(memguard.WithChunkSize(16))
	_, err = stream.Write(src(2))
	require.NoError(t, err)
	head := scratch[3*size : 3*size+10]
	_, err = stream.Read(head) // the caller's copy, in excluded memory
	require.NoError(t, err)
	flushed, err := stream.Flush()
	require.NoError(t, err)
	mustEqual(flushed, secret(0)[10:])
	memguard.WipeBytes(head)

	// A securememory secret: WithBytes and a reader.
	sm, err := new(securememory.Factory).New(src(3))
	require.NoError(t, err)
	require.NoError(t, sm.WithBytes(func(b []byte) error {
		if !bytes.Equal(b, secret(0)) {
			return io.ErrUnexpectedEOF
		}
		return nil
	}))
	n, err := io.ReadFull(sm.NewReader(), scratch[3*size:4*size])
	require.NoError(t, err)
	require.Equal(t, size, n)
	memguard.WipeBytes(scratch[3*size : 4*size])
	require.NoError(t, sm.Close())

	for _, b := range []*memguard.Buffer{fromReader, fromEntire, fromLine, opened, again, directOpened, randomOpened, mutable, view, flushed} {
		require.NoError(t, b.Destroy())
	}
	require.NoError(t, coffer.Destroy())
	memguard.Purge() // the region cache and the enclave key

	needles := [][]byte{secret(0), secret(1), secret(2), secret(3)[:32]}
	exclude := []memscan.Span{memscan.SpanOf(refs), memscan.SpanOf(scratch)}
	hits, err := memscan.Find(needles, exclude)
	require.NoError(t, err)
	assert.Empty(t, hits, "secrets left in process memory")

	// Control: the scan finds a secret that is still in ordinary memory.
	leak := make([]byte, size)
	copy(leak, secret(0))
	hits, err = memscan.Find(needles[:1], exclude)
	require.NoError(t, err)
	assert.NotEmpty(t, hits, "the scan must see a heap copy")
	memguard.WipeBytes(leak)
}
