package tests

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/securememory"
	"github.com/stretchr/testify/assert"
)

// soakFor is how long TestSoakPurge runs: short in `make test`; longer by
// hand, as in
//
//	go test -race ./tests -run Soak -soak=2m
var soakFor = flag.Duration("soak", 2*time.Second, "how long TestSoakPurge runs")

const (
	soakWorkers = 8
	soakSlots   = 6
	soakPurge   = 50 * time.Millisecond // the purger's period
)

// soakPattern is n bytes, none of them zero, the first of which gives the
// rest: a wipe anywhere in it shows, and so does a shifted or torn copy.
func soakPattern(seed byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = 1 + byte((int(seed)%255+i)%255)
	}
	return p
}

// intact reports whether d is a soakPattern of n bytes.
func intact(d []byte, n int) bool {
	if len(d) != n || n == 0 || d[0] == 0 {
		return false
	}
	return bytes.Equal(d, soakPattern(d[0]-1, n))
}

// soakStorages are the ways a secret can be stored; Compact holds at most
// 256 bytes, and secrets here are at most 200.
var soakStorages = [][]memguard.Option{
	nil,
	{memguard.NoAccessWhenIdle()},
	{memguard.Compact()},
	{memguard.SecretMemory(), memguard.AllowFallback()},
}

// soakBuffer is a shared Buffer and the length of its pattern. A fixed
// one is frozen and holds want for its whole life; a mutable one holds
// some pattern of n bytes, which WithDataMut replaces.
type soakBuffer struct {
	b    *memguard.Buffer
	n    int
	want []byte // fixed only
}

type soakCoffer struct {
	c   *memguard.Coffer
	key []byte // as read at creation: re-keying never changes it
}

type soakEnclave struct {
	e *memguard.Enclave
	n int
}

type soakSecret struct {
	s securememory.Secret
	n int
}

// soak is the shared state of TestSoakPurge and its tally.
type soak struct {
	t        *testing.T
	fixed    [soakSlots]atomic.Pointer[soakBuffer]
	mutable  [soakSlots]atomic.Pointer[soakBuffer]
	enclaves [soakSlots]atomic.Pointer[soakEnclave]
	secrets  [soakSlots]atomic.Pointer[soakSecret]
	coffer   atomic.Pointer[soakCoffer]

	mu       sync.Mutex
	ran      map[string]int // calls per operation
	wipedErr map[string]int // calls whose callback saw wiped data, and that failed
	bad      int            // calls that returned what they must not
}

// errOwn is a callback's own error, which some callbacks return: a call
// whose data was wiped under its callback must still report the wipe.
var errOwn = errors.New("the callback's own error")

// own is nil, or now and then errOwn.
func own(rng *rand.Rand) error {
	if rng.IntN(4) == 0 {
		return errOwn
	}
	return nil
}

// errNotRun stands for the result of a call that a callback would have
// made, had it run.
var errNotRun = errors.New("not run")

// allowed are the errors a Purge, a Destroy or a Close by another worker,
// or a Freeze, may give; io.EOF ends readers.
var allowed = []error{memguard.ErrDestroyed, memguard.ErrImmutable, memguard.ErrDecryption,
	memguard.ErrCofferDestroyed, securememory.ErrClosed, io.EOF, errOwn}

// done counts a call of op and checks its error, which must be one of
// allowed.
func (s *soak) done(op string, err error) {
	s.mu.Lock()
	s.ran[op]++
	s.mu.Unlock()
	if err == nil {
		return
	}
	for _, a := range allowed {
		if errors.Is(err, a) {
			return
		}
	}
	s.t.Errorf("%s: unexpected error %v", op, err)
}

// judge is done for a call whose callback saw wiped data if sawWiped:
// then the call must have failed, with an error matching want.
func (s *soak) judge(op string, sawWiped bool, err error, want error) {
	s.t.Helper()
	s.done(op, err)
	switch {
	case !sawWiped:
	case err == nil:
		s.violation("%s returned nil after its callback saw data other than what was stored", op)
	case !errors.Is(err, want):
		s.violation("%s: its callback saw wiped data, and it returned %v, not %v", op, err, want)
	default:
		s.mu.Lock()
		s.wipedErr[op]++
		s.mu.Unlock()
	}
}

// violation counts and reports a call that returned what it must not.
func (s *soak) violation(format string, args ...any) {
	s.t.Helper()
	s.mu.Lock()
	s.bad++
	s.mu.Unlock()
	s.t.Errorf(format, args...)
}

// copied is judge for a copy a call made (a new Buffer, an opened
// Enclave): it is read back, and if that read succeeds (so was whole
// throughout), it must hold a pattern of n bytes, or want if given.
func (s *soak) copied(op string, b *memguard.Buffer, n int, want []byte) {
	s.t.Helper()
	var whole bool
	err := b.WithData(func(d []byte) error {
		whole = intact(d, n) && (want == nil || bytes.Equal(d, want))
		return nil
	})
	s.done(op+" (read back)", err)
	if err == nil && !whole {
		s.violation("%s returned, with a nil error, a copy other than what was stored", op)
	}
	b.Destroy()
}

// look reads d as a callback does, slowly half the time (a yield halfway
// through widens the window for the purger), and reports whether it saw
// anything but a pattern of n bytes.
func look(rng *rand.Rand, d []byte, n int) (sawWiped bool) {
	if rng.IntN(2) == 0 {
		head := bytes.Clone(d[:len(d)/2])
		runtime.Gosched()
		return !intact(append(head, d[len(d)/2:]...), n)
	}
	return !intact(d, n)
}

func (s *soak) newShared(rng *rand.Rand, fixed bool) *soakBuffer {
	n := 8 + rng.IntN(193)
	want := soakPattern(byte(rng.IntN(255)), n)
	b, err := memguard.NewBufferFromBytes(bytes.Clone(want), soakStorages[rng.IntN(len(soakStorages))]...)
	s.done("NewBufferFromBytes", err)
	if err != nil {
		return nil
	}
	if !fixed {
		s.done("Melt", b.Melt())
		want = nil
	}
	return &soakBuffer{b: b, n: n, want: want}
}

// replace puts a new shared Buffer in slot and destroys the one it held.
func (s *soak) replace(rng *rand.Rand, slot *atomic.Pointer[soakBuffer], fixed bool) {
	if nb := s.newShared(rng, fixed); nb != nil {
		if old := slot.Swap(nb); old != nil {
			s.done("Destroy", old.b.Destroy())
		}
	}
}

func (s *soak) newCoffer() {
	c, err := memguard.NewCoffer(memguard.WithRekeyInterval(time.Millisecond))
	s.done("NewCoffer", err)
	if err != nil {
		return
	}
	var key []byte
	err = c.WithKey(func(k []byte) error { key = bytes.Clone(k); return nil })
	s.done("WithKey", err)
	if err != nil {
		c.Destroy()
		return
	}
	if old := s.coffer.Swap(&soakCoffer{c: c, key: key}); old != nil {
		s.done("Coffer.Destroy", old.c.Destroy())
	}
}

// op runs one public operation, chosen by rng, on shared or fresh state.
func (s *soak) op(rng *rand.Rand) {
	i := rng.IntN(soakSlots)
	fixed, mutable := s.fixed[i].Load(), s.mutable[i].Load()
	switch rng.IntN(22) {
	case 0:
		s.replace(rng, &s.fixed[i], true)
	case 1:
		s.replace(rng, &s.mutable[i], false)
	case 2: // WithData, on either kind
		sb := fixed
		if rng.IntN(2) == 0 {
			sb = mutable
		}
		var saw bool
		err := sb.b.WithData(func(d []byte) error { saw = look(rng, d, sb.n); return own(rng) })
		s.judge("WithData", saw, err, memguard.ErrDestroyed)
	case 3: // WithDataMut: reads the pattern there, writes another, reads it back
		var saw bool
		next := soakPattern(byte(rng.IntN(255)), mutable.n)
		err := mutable.b.WithDataMut(func(d []byte) error {
			saw = look(rng, d, mutable.n)
			copy(d, next)
			runtime.Gosched()
			saw = saw || !bytes.Equal(d, next)
			return own(rng)
		})
		s.judge("WithDataMut", saw, err, memguard.ErrDestroyed)
	case 4: // EqualTo against what a fixed Buffer holds: a match, or an error
		eq, err := fixed.b.EqualTo(fixed.want)
		s.done("EqualTo", err)
		if !eq && err == nil {
			s.violation("EqualTo reported a mismatch with a nil error: it compared other data than was stored")
		}
		_, err = mutable.b.EqualTo(soakPattern(0, mutable.n))
		s.done("EqualTo", err)
	case 5:
		s.done("Verify", fixed.b.Verify())
		s.done("Verify", mutable.b.Verify())
	case 6:
		s.done("Freeze", mutable.b.Freeze())
		runtime.Gosched()
		s.done("Melt", mutable.b.Melt())
	case 7: // copies of a fixed Buffer's data, from its callback
		var nb *memguard.Buffer
		var e *memguard.Enclave
		nbErr, eErr := errNotRun, errNotRun
		err := fixed.b.WithData(func(d []byte) error {
			nb, nbErr = memguard.NewBufferFromBytes(d, soakStorages[rng.IntN(len(soakStorages))]...)
			e, eErr = memguard.NewEnclave(d)
			return nil
		})
		s.done("WithData", err)
		if nbErr == errNotRun {
			return // destroyed before
		}
		s.done("NewBufferFromBytes", nbErr)
		s.done("NewEnclave", eErr)
		if nbErr == nil {
			// Seal the copy and open it: still what was stored.
			ce, err := nb.Seal()
			s.done("Seal", err)
			if err != nil {
				s.copied("NewBufferFromBytes", nb, fixed.n, fixed.want)
			} else if o, err := ce.Open(); err == nil {
				s.copied("Seal then Open", o, fixed.n, fixed.want)
			} else {
				s.done("Open", err)
			}
		}
		if eErr == nil {
			if o, err := e.Open(); err == nil {
				s.copied("NewEnclave then Open", o, fixed.n, fixed.want)
			} else {
				s.done("Open", err)
			}
		}
	case 8: // shared enclaves
		if se := s.enclaves[i].Load(); se != nil && rng.IntN(4) != 0 {
			o, err := se.e.Open(soakStorages[rng.IntN(len(soakStorages))]...)
			s.done("Open", err)
			if err == nil {
				s.copied("Open", o, se.n, nil)
			}
			s.done("Enclave.Size", nil)
			_ = se.e.Size()
			return
		}
		n := 8 + rng.IntN(193)
		e, err := memguard.NewEnclave(soakPattern(byte(rng.IntN(255)), n))
		s.done("NewEnclave", err)
		if err == nil {
			s.enclaves[i].Store(&soakEnclave{e: e, n: n})
		}
	case 9:
		e, err := memguard.NewEnclaveRandom(32)
		s.done("NewEnclaveRandom", err)
		if err == nil {
			o, err := e.Open()
			s.done("Open", err)
			if err == nil {
				s.done("Destroy", o.Destroy())
			}
		}
	case 10: // a private Buffer: Scramble, Wipe, NewBufferRandom
		p, err := memguard.NewBuffer(8+rng.IntN(193), soakStorages[rng.IntN(len(soakStorages))]...)
		s.done("NewBuffer", err)
		if err == nil {
			s.done("Scramble", p.Scramble())
			s.done("Wipe", p.Wipe())
			s.done("Destroy", p.Destroy())
		}
		r, err := memguard.NewBufferRandom(32, soakStorages[rng.IntN(len(soakStorages))]...)
		s.done("NewBufferRandom", err)
		if err == nil {
			s.done("Destroy", r.Destroy())
		}
	case 11: // the shared coffer
		sc := s.coffer.Load()
		if sc == nil || sc.c.Destroyed() {
			s.newCoffer()
			return
		}
		var saw bool
		err := sc.c.WithKey(func(k []byte) error {
			saw = !bytes.Equal(k, sc.key)
			runtime.Gosched()
			saw = saw || !bytes.Equal(k, sc.key)
			return own(rng)
		})
		s.judge("WithKey", saw, err, memguard.ErrCofferDestroyed)
		s.done("Rekey", sc.c.Rekey())
		v, err := sc.c.View()
		s.done("View", err)
		if err == nil {
			var same bool
			err := v.WithData(func(d []byte) error { same = bytes.Equal(d, sc.key); return nil })
			s.done("View (read back)", err)
			if err == nil && !same {
				s.violation("View returned, with a nil error, a copy other than the key")
			}
			v.Destroy()
		}
		if rng.IntN(20) == 0 {
			s.done("Coffer.Destroy", sc.c.Destroy())
		}
	case 12: // a Stream: written, read in odd pieces, then the rest taken
		n := 8 + rng.IntN(193)
		want := soakPattern(byte(rng.IntN(255)), n)
		st := memguard.NewStream(memguard.WithChunkSize(1 + rng.IntN(64)))
		w, err := st.Write(bytes.Clone(want))
		s.done("Stream.Write", err)
		p := make([]byte, 1+rng.IntN(40))
		k, err := st.Read(p)
		s.done("Stream.Read", err)
		if !bytes.Equal(p[:k], want[:k]) { // what Read counts is whole, error or not
			s.violation("Stream.Read returned %d bytes other than were written (%v)", k, err)
		}
		_ = st.Size()
		var b *memguard.Buffer
		op := "Stream.Next"
		if rng.IntN(2) == 0 {
			b, err = st.Next()
		} else {
			op = "Stream.Flush"
			b, err = st.Flush()
		}
		s.done(op, err)
		if err == nil {
			// The rest of what was written, from where Read stopped.
			var whole bool
			rerr := b.WithData(func(d []byte) error {
				whole = len(d) > 0 && len(d) <= w-k && bytes.Equal(d, want[k:k+len(d)])
				return nil
			})
			s.done(op+" (read back)", rerr)
			if rerr == nil && !whole {
				s.violation("%s returned, with a nil error, other data than was written", op)
			}
			b.Destroy()
		}
	case 13: // constructors from readers
		n := 8 + rng.IntN(193)
		want := soakPattern(byte(rng.IntN(255)), n)
		b, err := memguard.NewBufferFromReader(bytes.NewReader(want), n, soakStorages[rng.IntN(len(soakStorages))]...)
		s.done("NewBufferFromReader", err)
		if err == nil {
			s.copied("NewBufferFromReader", b, n, want)
		}
		b, err = memguard.NewBufferFromEntireReader(bytes.NewReader(want), soakStorages[rng.IntN(len(soakStorages))]...)
		s.done("NewBufferFromEntireReader", err)
		if err == nil {
			s.copied("NewBufferFromEntireReader", b, n, want)
		}
	case 14: // the shared Secrets
		ss := s.secrets[i].Load()
		if ss == nil || ss.s.IsClosed() || rng.IntN(30) == 0 {
			n := 8 + rng.IntN(193)
			sec, err := new(securememory.Factory).New(soakPattern(byte(rng.IntN(255)), n))
			s.done("securememory New", err)
			if err == nil {
				if old := s.secrets[i].Swap(&soakSecret{s: sec, n: n}); old != nil {
					s.done("Secret.Close", old.s.Close())
				}
			}
			return
		}
		var saw bool
		err := ss.s.WithBytes(func(b []byte) error { saw = look(rng, b, ss.n); return own(rng) })
		s.judge("WithBytes", saw, err, securememory.ErrClosed)
		saw = false
		out, err := ss.s.WithBytesFunc(func(b []byte) ([]byte, error) {
			saw = look(rng, b, ss.n)
			return bytes.Clone(b), nil
		})
		s.judge("WithBytesFunc", saw || (err == nil && !intact(out, ss.n)), err, securememory.ErrClosed)
		if err != nil && out != nil {
			s.violation("WithBytesFunc returned bytes beside %v", err)
		}
	case 15: // a Secret's reader, read whole, and copied by memguard
		ss := s.secrets[i].Load()
		if ss == nil {
			return
		}
		all, err := io.ReadAll(ss.s.NewReader())
		s.done("Secret reader", err)
		if err == nil && !intact(all, ss.n) {
			s.violation("a Secret's reader read other data than was stored, with a nil error")
		}
		b, err := memguard.NewBufferFromReader(ss.s.NewReader(), ss.n)
		s.done("NewBufferFromReader(Secret reader)", err)
		if err == nil {
			s.copied("NewBufferFromReader(Secret reader)", b, ss.n, nil)
		}
	case 16: // a Secret made from a fixed Buffer's data, and a random one
		var sec securememory.Secret
		secErr := errNotRun
		err := fixed.b.WithData(func(d []byte) error {
			sec, secErr = new(securememory.Factory).New(d)
			return nil
		})
		s.done("WithData", err)
		if secErr != errNotRun {
			s.done("securememory New", secErr)
		}
		if secErr == nil {
			all, err := io.ReadAll(sec.NewReader())
			s.done("Secret reader", err)
			if err == nil && !bytes.Equal(all, fixed.want) {
				s.violation("a Secret made from a Buffer's data holds other data than was stored")
			}
			s.done("Secret.Close", sec.Close())
		}
		r, err := new(securememory.Factory).CreateRandom(32)
		s.done("CreateRandom", err)
		if err == nil {
			s.done("Secret.Close", r.Close())
		}
	case 17: // the accessors
		for _, sb := range []*soakBuffer{fixed, mutable} {
			_ = sb.b.Alive()
			_ = sb.b.Mutable()
			_ = sb.b.Locked()
			_ = sb.b.Size()
			_ = sb.b.String()
		}
		_ = memguard.Stats()
		s.done("accessors", nil)
	case 18: // Destroy a shared Buffer in place; the next replace refills
		s.done("Destroy", mutable.b.Destroy())
		s.replace(rng, &s.mutable[i], false)
	case 19: // WithDataMut that only reads
		var saw bool
		err := mutable.b.WithDataMut(func(d []byte) error {
			saw = look(rng, d, mutable.n)
			return own(rng)
		})
		s.judge("WithDataMut", saw, err, memguard.ErrDestroyed)
	case 20: // a Purge from inside a callback, now and then
		if rng.IntN(50) == 0 {
			err := fixed.b.WithData(func([]byte) error { memguard.Purge(); return nil })
			s.done("WithData", err)
			if !errors.Is(err, memguard.ErrDestroyed) {
				s.violation("WithData returned %v, not ErrDestroyed, after its callback purged", err)
			}
		}
	case 21:
		s.replace(rng, &s.fixed[i], true)
		s.replace(rng, &s.mutable[i], false)
	}
}

// Every public operation from several goroutines, while a purger purges
// on a schedule: no call returns nil after its callback saw data other
// than what was stored, and no copy a call returns with a nil error holds
// anything else. The patterns have no zero byte, so a wipe shows.
func TestSoakPurge(t *testing.T) {
	memguard.Purge()
	s := &soak{t: t, ran: map[string]int{}, wipedErr: map[string]int{}}
	seed := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for i := 0; i < soakSlots; i++ {
		s.replace(seed, &s.fixed[i], true)
		s.replace(seed, &s.mutable[i], false)
		if s.fixed[i].Load() == nil || s.mutable[i].Load() == nil {
			t.Fatal("no shared Buffers to begin with")
		}
	}
	s.newCoffer()

	deadline := time.Now().Add(*soakFor)
	var workers sync.WaitGroup
	for w := 0; w < soakWorkers; w++ {
		workers.Add(1)
		rng := rand.New(rand.NewPCG(seed.Uint64(), uint64(w)))
		go func() {
			defer workers.Done()
			for time.Now().Before(deadline) {
				s.op(rng)
			}
		}()
	}
	stop, purged := make(chan struct{}), make(chan int)
	go func() {
		tick := time.NewTicker(soakPurge)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-stop:
				purged <- n
				return
			case <-tick.C:
				memguard.Purge()
				n++
			}
		}
	}()
	finished := make(chan struct{})
	go func() {
		workers.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(*soakFor + 2*time.Minute):
		t.Fatal("workers still running two minutes after the soak's end")
	}
	close(stop)
	purges := <-purged

	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("%v, %d purges; calls whose callback saw wiped data and failed as they should: %v", *soakFor, purges, s.wipedErr)
	t.Logf("calls: %s", counts(s.ran))
	assert.Zero(t, s.bad, "calls that returned nil over wiped data")
	assert.Positive(t, purges)
	for _, op := range []string{"WithData", "WithDataMut", "EqualTo", "Verify", "Seal", "Open", "WithKey",
		"View", "Rekey", "Stream.Write", "Stream.Read", "NewBufferFromReader", "NewBufferFromEntireReader",
		"WithBytes", "WithBytesFunc", "Secret reader", "securememory New", "NewEnclave", "NewEnclaveRandom"} {
		assert.Positive(t, s.ran[op], "%s never ran", op)
	}

	memguard.Purge()
	st := memguard.Stats()
	assert.Zero(t, st.LiveBuffers, "after the last Purge")
	assert.Zero(t, st.LockedBytes, "after the last Purge")
}

// counts lists n by key, sorted.
func counts(n map[string]int) string {
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, n[k])
	}
	return b.String()
}
