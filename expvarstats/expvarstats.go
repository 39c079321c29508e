// Package expvarstats publishes memguard.Stats through the standard
// library's expvar registry.
//
// Importing this package imports expvar, whose init registers the
// /debug/vars handler on http.DefaultServeMux: a service that serves the
// default mux then publishes its command line and memory statistics there.
// That is why the publishing lives here and not in memguard itself, which
// imports neither expvar nor net/http. Import this package only where that
// handler is wanted; github.com/securememory/memguard/promstats serves the
// same figures to Prometheus instead.
package expvarstats

import (
	"expvar"
	"fmt"
	"sync"

	"github.com/securememory/memguard"
)

var mu sync.Mutex

// Publish exports memguard.Stats, as JSON, under name in the expvar
// registry, served at /debug/vars by net/http. The figures are read each
// time the variable is, not copied at publication. Nothing is published
// unless this is called. A name already in the registry, or an empty one,
// gives memguard.ErrInvalidArgument, where expvar itself would panic.
func Publish(name string) error {
	mu.Lock()
	defer mu.Unlock()
	if name == "" || expvar.Get(name) != nil {
		return fmt.Errorf("%w: expvar name %q is empty or taken", memguard.ErrInvalidArgument, name)
	}
	expvar.Publish(name, expvar.Func(func() any { return memguard.Stats() }))
	return nil
}
