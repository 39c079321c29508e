package securememory

import (
	"bytes"
	"encoding/json"
	"errors"
	"expvar"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const closedText = "secret has already been destroyed"

func TestNewWipesAndHolds(t *testing.T) {
	f := new(Factory)
	src := []byte("thirty-two bytes of key material")
	want := bytes.Clone(src)
	s, err := f.New(src)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, make([]byte, len(want)), src, "New wipes the caller's bytes")
	require.NoError(t, s.WithBytes(func(b []byte) error {
		assert.Equal(t, want, b)
		return nil
	}))
	out, err := s.WithBytesFunc(func(b []byte) ([]byte, error) { return bytes.ToUpper(b), nil })
	require.NoError(t, err)
	assert.Equal(t, bytes.ToUpper(want), out)
	sentinel := errors.New("action failed")
	assert.Same(t, sentinel, s.WithBytes(func([]byte) error { return sentinel }))
	assert.False(t, s.IsClosed())
}

func TestNewRejectsEmpty(t *testing.T) {
	var f Factory // the zero value works
	for _, b := range [][]byte{nil, {}} {
		s, err := f.New(b)
		assert.ErrorIs(t, err, memguard.ErrInvalidSize)
		assert.True(t, s == nil, "a nil Secret interface, not a typed nil")
	}
	s, err := f.CreateRandom(0)
	assert.Error(t, err)
	assert.True(t, s == nil)
}

func TestCreateRandom(t *testing.T) {
	f := new(Factory)
	a, err := f.CreateRandom(32)
	require.NoError(t, err)
	defer a.Close()
	b, err := f.CreateRandom(32)
	require.NoError(t, err)
	defer b.Close()
	ab, _ := a.WithBytesFunc(func(x []byte) ([]byte, error) { return bytes.Clone(x), nil })
	bb, _ := b.WithBytesFunc(func(x []byte) ([]byte, error) { return bytes.Clone(x), nil })
	assert.Len(t, ab, 32)
	assert.NotEqual(t, ab, bb)
}

func TestClosedSecret(t *testing.T) {
	s, err := new(Factory).New([]byte("secret"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")
	assert.True(t, s.IsClosed())

	called := false
	err = s.WithBytes(func([]byte) error { called = true; return nil })
	assert.EqualError(t, err, closedText)
	assert.False(t, called)
	_, err = s.WithBytesFunc(func([]byte) ([]byte, error) { called = true; return nil, nil })
	assert.EqualError(t, err, closedText)
	_, err = s.NewReader().Read(make([]byte, 4))
	assert.EqualError(t, err, closedText)
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, err, memguard.ErrDestroyed)
	assert.False(t, called)
}

func TestCloseWaitsForReaders(t *testing.T) {
	s, err := new(Factory).New([]byte("in use"))
	require.NoError(t, err)
	inside, closeStarted, closeDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var readerFinished atomic.Bool
	go func() {
		<-inside
		close(closeStarted)
		assert.NoError(t, s.Close())
		assert.True(t, readerFinished.Load(), "Close returned while a reader was inside")
		close(closeDone)
	}()
	require.NoError(t, s.WithBytes(func(b []byte) error {
		close(inside)
		<-closeStarted
		for i := 0; i < 100; i++ { // give a broken Close every chance to finish first
			runtime.Gosched()
		}
		assert.Equal(t, []byte("in use"), b, "still intact while Close waits")
		readerFinished.Store(true)
		return nil
	}))
	<-closeDone
	assert.True(t, s.IsClosed())
}

func TestCountersMoveOnce(t *testing.T) {
	alloc, inUse := AllocCounter.Count(), InUseCounter.Count()
	f := new(Factory)
	a, err := f.New([]byte("a"))
	require.NoError(t, err)
	b, err := f.CreateRandom(8)
	require.NoError(t, err)
	assert.Equal(t, alloc+2, AllocCounter.Count())
	assert.Equal(t, inUse+2, InUseCounter.Count())
	require.NoError(t, a.Close())
	require.NoError(t, a.Close())
	assert.Equal(t, inUse+1, InUseCounter.Count(), "once per Close, not per call")
	require.NoError(t, b.Close())
	assert.Equal(t, inUse, InUseCounter.Count())
	assert.Equal(t, alloc+2, AllocCounter.Count(), "allocation count never goes down")
	_, err = f.New(nil)
	assert.Error(t, err)
	assert.Equal(t, alloc+2, AllocCounter.Count(), "a failed New allocates nothing")
}

func TestNewReader(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 30)
	s, err := new(Factory).New(bytes.Clone(content))
	require.NoError(t, err)
	defer s.Close()
	assert.NoError(t, iotest.TestReader(s.NewReader(), content))
	all, err := io.ReadAll(s.NewReader())
	require.NoError(t, err)
	assert.Equal(t, content, all)
}

// The reader returns io.EOF together with the last bytes, and then alone,
// as Asherah's does (its TestReader reads "0123456789" in these steps).
func TestReaderEOFWithLastBytes(t *testing.T) {
	s, err := new(Factory).New([]byte("0123456789"))
	require.NoError(t, err)
	defer s.Close()
	r := s.NewReader()
	for _, step := range []struct {
		n    int
		want string
		err  error
	}{
		{4, "0123", nil},
		{0, "", nil},
		{4, "4567", nil},
		{1, "8", nil},
		{4, "9", io.EOF},
		{4, "", io.EOF},
		{0, "", io.EOF},
	} {
		p := make([]byte, step.n)
		n, err := r.Read(p)
		assert.Equal(t, step.err, err, "reading %d for %q", step.n, step.want)
		assert.Equal(t, step.want, string(p[:n]))
	}

	exact := s.NewReader()
	p := make([]byte, 10)
	n, err := exact.Read(p)
	assert.Equal(t, 10, n)
	assert.Equal(t, io.EOF, err, "a read that takes the rest exactly ends it")
	assert.Equal(t, "0123456789", string(p))
}

func TestCounterForDashboards(t *testing.T) {
	assert.Equal(t, "secret.allocated", AllocCounter.Name())
	assert.Equal(t, "secret.inuse", InUseCounter.Name())
	for _, c := range []*Counter{AllocCounter, InUseCounter} {
		var v expvar.Var = c
		var n int64
		require.NoError(t, json.Unmarshal([]byte(v.String()), &n), "expvar wants JSON")
		assert.InDelta(t, c.Count(), n, 1000) // other tests' Secrets may move it meanwhile
	}
	s, err := new(Factory).New([]byte("x"))
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(InUseCounter.Count(), 10), InUseCounter.String())
	require.NoError(t, s.Close())

	var none *Counter
	assert.Zero(t, none.Count())
	assert.Empty(t, none.Name())
	assert.Equal(t, "0", none.String())
	assert.Equal(t, "0", new(Counter).String())
}

func TestReadersRaceWithClose(t *testing.T) {
	s, err := new(Factory).New(bytes.Repeat([]byte{7}, 64))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.NewReader()
			p := make([]byte, 3)
			for {
				n, err := r.Read(p)
				assert.Equal(t, bytes.Repeat([]byte{7}, n), p[:n])
				if err != nil {
					if err != io.EOF {
						assert.EqualError(t, err, closedText)
					}
					return
				}
			}
		}()
	}
	assert.NoError(t, s.Close())
	wg.Wait()
}

// dropSecrets makes n Secrets and lets go of them without Close; purged,
// they are wiped by a Purge first.
//
//go:noinline
func dropSecrets(t *testing.T, n int, purged bool) {
	f := new(Factory)
	for i := 0; i < n; i++ {
		_, err := f.CreateRandom(32)
		require.NoError(t, err)
	}
	if purged {
		memguard.Purge()
	}
}

// untilSettled runs the collector until cond holds, failing after a
// minute.
func untilSettled(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "not settled: in use %d, %+v", InUseCounter.Count(), memguard.Stats())
		runtime.GC()
		runtime.Gosched()
	}
}

// Asherah closes a Secret that is dropped without Close from a finalizer;
// so does this package, with a cleanup: InUseCounter moves down, and the
// Buffer is wiped and counted as reclaimed.
func TestDroppedSecretsAreClosed(t *testing.T) {
	inUse, before := InUseCounter.Count(), memguard.Stats()
	dropSecrets(t, 100, false)
	require.Equal(t, inUse+100, InUseCounter.Count())
	untilSettled(t, func() bool {
		s := memguard.Stats()
		return InUseCounter.Count() == inUse && s.Reclaimed >= before.Reclaimed+100
	})
}

// A purged Secret dropped without Close is still closed for the counters.
func TestDroppedPurgedSecretsAreClosed(t *testing.T) {
	inUse := InUseCounter.Count()
	dropSecrets(t, 20, true)
	untilSettled(t, func() bool { return InUseCounter.Count() == inUse })
}
