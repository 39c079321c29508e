// Package promstats is a Prometheus collector of memguard.Stats.
//
// It is a module of its own, so that only programs that import it depend
// on github.com/prometheus/client_golang; memguard itself imports neither
// it nor net/http. Register the collector once:
//
//	prometheus.MustRegister(promstats.NewCollector())
//
// Every scrape reads memguard.Stats once and reports each figure under the
// memguard_ prefix: gauges for what is live now and for the lock limit,
// counters (ending in _total) for what has happened since the process
// started. A memlock limit that is not enforced, or does not exist, is
// reported as +Inf, as memguard.MemlockUnlimited stands for.
package promstats

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/securememory/memguard"
)

// metric is one figure of memguard.Statistics as a Prometheus metric.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(memguard.Statistics) float64
}

// Collector is a prometheus.Collector of memguard.Stats. Its zero value
// is not usable; make one with NewCollector. It is safe for concurrent
// use.
type Collector struct {
	metrics []metric
}

// NewCollector returns a Collector of memguard.Stats.
func NewCollector() *Collector {
	gauge := func(name, help string, value func(memguard.Statistics) float64) metric {
		return metric{prometheus.NewDesc("memguard_"+name, help, nil, nil), prometheus.GaugeValue, value}
	}
	counter := func(name, help string, value func(memguard.Statistics) float64) metric {
		return metric{prometheus.NewDesc("memguard_"+name, help, nil, nil), prometheus.CounterValue, value}
	}
	return &Collector{metrics: []metric{
		gauge("live_buffers",
			"Buffers not yet destroyed, the ones Coffers hold and compact ones included.",
			func(s memguard.Statistics) float64 { return float64(s.LiveBuffers) }),
		gauge("locked_bytes",
			"Bytes of memory locked now: live and cached regions, and the compact arena's chunks whole.",
			func(s memguard.Statistics) float64 { return float64(s.LockedBytes) }),
		gauge("unlocked_buffers",
			"Live Buffers whose pages are not locked, under LockBestEffort or LockDisabled.",
			func(s memguard.Statistics) float64 { return float64(s.UnlockedBuffers) }),
		gauge("cached_regions",
			"Wiped regions kept mapped, and locked, for reuse.",
			func(s memguard.Statistics) float64 { return float64(s.CachedRegions) }),
		gauge("secret_memory_buffers",
			"Live Buffers whose data pages are memfd_secret memory.",
			func(s memguard.Statistics) float64 { return float64(s.SecretMemoryBuffers) }),
		gauge("compact_buffers",
			"Live Buffers held in slots of the compact arena, also counted in memguard_live_buffers.",
			func(s memguard.Statistics) float64 { return float64(s.CompactBuffers) }),
		counter("canary_failures_total",
			"Buffers found with a broken canary: a write out of bounds next to a secret.",
			func(s memguard.Statistics) float64 { return float64(s.CanaryFailures) }),
		counter("lock_failures_total",
			"Allocations whose pages the kernel refused to lock.",
			func(s memguard.Statistics) float64 { return float64(s.LockFailures) }),
		counter("reclaimed_total",
			"Buffers and Coffers dropped without Destroy and freed by the garbage collector: a growing count is a leak.",
			func(s memguard.Statistics) float64 { return float64(s.Reclaimed) }),
		counter("rekey_failures_total",
			"Background re-keys of Coffers that failed and were retried.",
			func(s memguard.Statistics) float64 { return float64(s.RekeyFailures) }),
		counter("secret_memory_fallbacks_total",
			"SecretMemory allocations that got ordinary pages instead (AllowFallback).",
			func(s memguard.Statistics) float64 { return float64(s.SecretMemoryFallbacks) }),
		gauge("memlock_limit_bytes",
			"The soft RLIMIT_MEMLOCK; +Inf if there is none.",
			func(s memguard.Statistics) float64 { return bytes(s.MemlockLimit) }),
		gauge("memlock_enforced",
			"1 if the kernel enforces RLIMIT_MEMLOCK on this process, 0 if it may lock beyond it (CAP_IPC_LOCK).",
			func(s memguard.Statistics) float64 {
				if s.MemlockEnforced {
					return 1
				}
				return 0
			}),
		gauge("memlock_headroom_bytes",
			"Bytes memguard could still lock if nothing else in the process locks memory; +Inf without an enforced limit.",
			func(s memguard.Statistics) float64 { return bytes(s.MemlockHeadroom) }),
	}}
}

// bytes is n as a float, with memguard.MemlockUnlimited as +Inf.
func bytes(n uint64) float64 {
	if n == memguard.MemlockUnlimited {
		return math.Inf(1)
	}
	return float64(n)
}

// Describe sends the descriptor of every metric the Collector reports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect reads memguard.Stats once and sends every metric's value.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := memguard.Stats()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
