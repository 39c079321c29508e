package memguard

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

// Every shared buffer holds one byte value repeated: a reader sees that,
// or zeros if Purge wiped it under the reader, never a mix.
func uniform(d []byte) bool {
	return len(d) == 0 || bytes.Count(d, d[:1]) == len(d)
}

func TestStress(t *testing.T) {
	const (
		workers    = 16
		iterations = 400 // per worker: the test's size is fixed, not timed
		purges     = 40
		slots      = 8
	)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	Purge()
	canaryFailuresBefore := Stats().CanaryFailures
	var (
		shared   [slots]atomic.Pointer[Buffer]
		enclaves [slots]atomic.Pointer[Enclave]
		coffer   atomic.Pointer[Coffer]
		ops      atomic.Int64
	)
	allowed := func(err error) {
		if err == nil {
			return
		}
		for _, e := range []error{ErrDestroyed, ErrImmutable, ErrDecryption, ErrCofferDestroyed} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Errorf("unexpected error: %v", err)
	}
	work := func(seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 1))
		for i := 0; i < iterations; i++ {
			ops.Add(1)
			slot := rng.IntN(slots)
			b := shared[slot].Load()
			switch rng.IntN(12) {
			case 0: // replace
				nb, err := NewBufferFromBytes(bytes.Repeat([]byte{byte(rng.IntN(255) + 1)}, 16+rng.IntN(100)))
				allowed(err)
				if err == nil {
					allowed(shared[slot].Swap(nb).Destroy())
				}
			case 1:
				allowed(b.WithData(func(d []byte) error {
					if !uniform(d) {
						t.Errorf("torn read")
					}
					return nil
				}))
			case 2:
				v := byte(rng.IntN(255) + 1)
				allowed(b.WithDataMut(func(d []byte) error {
					for j := range d {
						d[j] = v
					}
					return nil
				}))
			case 3:
				allowed(b.Freeze())
			case 4:
				allowed(b.Melt())
			case 5:
				allowed(b.Verify())
			case 6:
				_, err := b.EqualTo([]byte{1, 2, 3})
				allowed(err)
			case 7: // seal a private copy, open a shared enclave
				var c *Buffer
				err := b.WithData(func(d []byte) error {
					var err error
					c, err = NewBufferFromBytes(append([]byte(nil), d...))
					return err
				})
				allowed(err)
				if c != nil {
					e, err := c.Seal()
					allowed(err)
					if e != nil {
						enclaves[slot].Store(e)
					}
				}
				if e := enclaves[rng.IntN(slots)].Load(); e != nil {
					o, err := e.Open()
					allowed(err)
					if err == nil {
						allowed(o.WithData(func(d []byte) error {
							if !uniform(d) {
								t.Errorf("torn enclave")
							}
							return nil
						}))
						allowed(o.Destroy())
					}
				}
			case 8: // private buffer: scramble, wipe
				p, err := NewBuffer(32)
				allowed(err)
				allowed(p.Scramble())
				allowed(p.Wipe())
				allowed(p.Destroy())
			case 9: // shared coffer
				c := coffer.Load()
				if c.Destroyed() {
					nc, err := NewCoffer(WithRekeyInterval(time.Millisecond))
					allowed(err)
					if nc != nil && !coffer.CompareAndSwap(c, nc) {
						allowed(nc.Destroy())
					}
					continue
				}
				allowed(c.Rekey())
				v, err := c.View()
				allowed(err)
				if v != nil {
					allowed(c.WithKey(func(k []byte) error { _, err := v.EqualTo(k); return err }))
					allowed(v.Destroy())
				}
			case 10:
				allowed(b.Destroy())
			case 11:
				_ = b.String()
				_ = b.Size()
				_ = b.Mutable()
			}
		}
	}
	withinDeadline(t, 3*time.Minute, func() {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				work(uint64(w))
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < purges; i++ {
				Purge()
				runtime.Gosched()
			}
		}()
		wg.Wait()
	})
	assert.Equal(t, int64(workers*iterations), ops.Load(), "every operation ran")
	for i := range shared {
		shared[i].Load().Destroy()
	}
	coffer.Load().Destroy()
	Purge()
	s := Stats()
	assert.Zero(t, s.LiveBuffers)
	assert.Zero(t, s.LockedBytes)
	assert.Zero(t, s.UnlockedBuffers)
	assert.Zero(t, s.CachedRegions)
	assert.Empty(t, buffers.snapshot())
	assert.Equal(t, canaryFailuresBefore, s.CanaryFailures, "no canary broke")
}
