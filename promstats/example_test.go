package promstats_test

import (
	"fmt"
	"log"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/securememory/memguard/promstats"
)

// Register the collector with a registry that promhttp serves; here, the
// names of what one scrape reports.
func ExampleNewCollector() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(promstats.NewCollector())
	// In a service: http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		fmt.Println(f.GetName(), f.GetType())
	}
	// Output:
	// memguard_cached_regions GAUGE
	// memguard_canary_failures_total COUNTER
	// memguard_compact_buffers GAUGE
	// memguard_live_buffers GAUGE
	// memguard_lock_failures_total COUNTER
	// memguard_locked_bytes GAUGE
	// memguard_memlock_enforced GAUGE
	// memguard_memlock_headroom_bytes GAUGE
	// memguard_memlock_limit_bytes GAUGE
	// memguard_reclaimed_total COUNTER
	// memguard_rekey_failures_total COUNTER
	// memguard_secret_memory_buffers GAUGE
	// memguard_secret_memory_fallbacks_total COUNTER
	// memguard_unlocked_buffers GAUGE
}
