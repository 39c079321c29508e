// Package securememory provides the contract of Asherah's Go securememory
// package on top of memguard, so that envelope-encryption code written
// against it can switch with a small shim (see docs/GUIDE.md).
//
// A Secret is a memguard Buffer that is frozen and, while no WithBytes call
// is running, inaccessible (PROT_NONE): a stray read of it faults instead of
// seeing the secret.
package securememory

import (
	"io"
	"strconv"
	"sync/atomic"

	"github.com/securememory/memguard"
)

// Secret holds a secret in protected memory.
type Secret interface {
	// WithBytes calls action with the secret, read-only, and returns its
	// error. The slice must not be kept after action returns.
	//
	// memguard.Purge does not wait for action: it wipes the secret at
	// once, so action may observe zeros. WithBytes then returns ErrClosed
	// (wrapping action's error, if action returned one), and whatever
	// action computed must be discarded.
	WithBytes(action func([]byte) error) error
	// WithBytesFunc is WithBytes for actions that return bytes. If
	// memguard.Purge wiped the secret while action ran, it returns nil
	// bytes and ErrClosed, as WithBytes does.
	WithBytesFunc(action func([]byte) ([]byte, error)) ([]byte, error)
	// IsClosed reports whether Close has been called.
	IsClosed() bool
	// Close waits for WithBytes calls in progress, then wipes and frees
	// the secret. Closing again does nothing.
	Close() error
	// NewReader returns a reader of the secret's bytes. A Read during
	// which memguard.Purge wiped the secret returns 0 and ErrClosed, and
	// wipes what it had copied into its slice.
	NewReader() io.Reader
}

// SecretFactory creates Secrets.
type SecretFactory interface {
	// New copies b into a new Secret and wipes b.
	New(b []byte) (Secret, error)
	// CreateRandom returns a Secret of size random bytes.
	CreateRandom(size int) (Secret, error)
}

// Factory creates memguard-backed Secrets. Its zero value is ready to use:
// new(securememory.Factory) is a SecretFactory.
//
// Every Secret is made with memguard.NoAccessWhenIdle, and with Options
// besides: memguard.SecretMemory() there takes its pages out of the
// kernel's direct map too. Options given to a memguard call replace the
// process defaults (memguard.SetDefaultOptions), so a Factory uses the
// defaults only where Options repeats them.
type Factory struct {
	Options []memguard.Option
}

// options are the memguard Options of a new Secret.
func (f *Factory) options() []memguard.Option {
	opts := []memguard.Option{memguard.NoAccessWhenIdle()}
	if f != nil {
		opts = append(opts, f.Options...)
	}
	return opts
}

var _ SecretFactory = (*Factory)(nil)

// ErrClosed is returned by every use of a closed Secret. Its text is
// exactly Asherah's; errors.Is(ErrClosed, memguard.ErrDestroyed) holds too.
var ErrClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string        { return "secret has already been destroyed" }
func (closedError) Is(target error) bool { return target == memguard.ErrDestroyed }

// Counter is a count that is safe for concurrent use. A nil *Counter
// counts zero.
//
// Asherah's counters are go-metrics Counters, registered in go-metrics'
// default registry under the names Name returns, where reporters find
// them. This package does not depend on go-metrics; these lines register
// its counters there, as gauges (which reporters export with the same
// value). A program that imports Asherah's securememory package, as the
// shim in docs/GUIDE.md does, already has Asherah's own counters under
// those names, registered when that package is initialised, and they stay
// at zero: go-metrics refuses a second metric of a name, and
// NewRegisteredFunctionalGauge drops that error, so Unregister comes
// first:
//
//	metrics.Unregister(securememory.AllocCounter.Name())
//	metrics.NewRegisteredFunctionalGauge(securememory.AllocCounter.Name(), nil, securememory.AllocCounter.Count)
//	metrics.Unregister(securememory.InUseCounter.Name())
//	metrics.NewRegisteredFunctionalGauge(securememory.InUseCounter.Name(), nil, securememory.InUseCounter.Count)
//
// A *Counter is also an expvar.Var (String), for dashboards that scrape
// /debug/vars: expvar.Publish(securememory.AllocCounter.Name(),
// securememory.AllocCounter).
type Counter struct {
	n    atomic.Int64
	name string
}

// Count returns the current count.
func (c *Counter) Count() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// Name is the name Asherah registers the counter under:
// "secret.allocated" for AllocCounter, "secret.inuse" for InUseCounter.
// Other Counters have none.
func (c *Counter) Name() string {
	if c == nil {
		return ""
	}
	return c.name
}

// String returns the count in decimal, which is valid JSON, as expvar.Var
// asks.
func (c *Counter) String() string { return strconv.FormatInt(c.Count(), 10) }

func (c *Counter) add(d int64) { c.n.Add(d) }

// The counters Asherah's securememory exposes, under the same meaning and
// names: AllocCounter moves once per Secret allocated; InUseCounter once
// up per allocation and once down per Close.
var (
	AllocCounter = &Counter{name: "secret.allocated"}
	InUseCounter = &Counter{name: "secret.inuse"}
)

// New copies b into a new Secret and wipes b. Empty b gives an error
// matching memguard.ErrInvalidSize and a nil Secret. On an error b is left
// as it was.
func (f *Factory) New(b []byte) (Secret, error) {
	buf, err := memguard.NewBufferFromBytes(b, f.options()...)
	if err != nil {
		return nil, err
	}
	return newSecret(buf), nil
}

// CreateRandom returns a Secret of size bytes from the kernel's CSPRNG.
func (f *Factory) CreateRandom(size int) (Secret, error) {
	buf, err := memguard.NewBufferRandom(size, f.options()...)
	if err != nil {
		return nil, err
	}
	return newSecret(buf), nil
}
