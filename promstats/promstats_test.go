package promstats_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/securememory/memguard"
	"github.com/securememory/memguard/promstats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(promstats.NewCollector())
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// gather scrapes c through a pedantic registry, which also checks that
// what Collect sends matches what Describe announced.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	families, err := reg.Gather()
	require.NoError(t, err)
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	return byName
}

func bytes(n uint64) float64 {
	if n == memguard.MemlockUnlimited {
		return math.Inf(1)
	}
	return float64(n)
}

func boolean(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// expected is what a scrape must report for s: each metric's type and
// value.
func expected(s memguard.Statistics) map[string]struct {
	kind  dto.MetricType
	value float64
} {
	type m = struct {
		kind  dto.MetricType
		value float64
	}
	g, c := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	return map[string]m{
		"memguard_live_buffers":                  {g, float64(s.LiveBuffers)},
		"memguard_locked_bytes":                  {g, float64(s.LockedBytes)},
		"memguard_unlocked_buffers":              {g, float64(s.UnlockedBuffers)},
		"memguard_cached_regions":                {g, float64(s.CachedRegions)},
		"memguard_secret_memory_buffers":         {g, float64(s.SecretMemoryBuffers)},
		"memguard_compact_buffers":               {g, float64(s.CompactBuffers)},
		"memguard_canary_failures_total":         {c, float64(s.CanaryFailures)},
		"memguard_lock_failures_total":           {c, float64(s.LockFailures)},
		"memguard_reclaimed_total":               {c, float64(s.Reclaimed)},
		"memguard_rekey_failures_total":          {c, float64(s.RekeyFailures)},
		"memguard_secret_memory_fallbacks_total": {c, float64(s.SecretMemoryFallbacks)},
		"memguard_memlock_limit_bytes":           {g, bytes(s.MemlockLimit)},
		"memguard_memlock_enforced":              {g, boolean(s.MemlockEnforced)},
		"memguard_memlock_headroom_bytes":        {g, bytes(s.MemlockHeadroom)},
	}
}

// A scrape reports the figures of Stats, each once, with the right type.
func TestReportsStats(t *testing.T) {
	ordinary, err := memguard.NewBuffer(32)
	require.NoError(t, err)
	defer ordinary.Destroy()
	compact, err := memguard.NewBuffer(32, memguard.Compact())
	require.NoError(t, err)
	defer compact.Destroy()

	// Nothing else in this test process allocates, so the figures hold
	// still across the scrape.
	before := memguard.Stats()
	got := gather(t, promstats.NewCollector())
	require.Equal(t, before, memguard.Stats(), "the figures moved during the scrape")
	require.GreaterOrEqual(t, before.LiveBuffers, 2)
	require.GreaterOrEqual(t, before.CompactBuffers, 1)
	require.Positive(t, before.LockedBytes+before.UnlockedBuffers)

	want := expected(before)
	assert.Len(t, got, len(want))
	for name, w := range want {
		f, ok := got[name]
		if !assert.True(t, ok, "%s missing", name) {
			continue
		}
		assert.Equal(t, w.kind, f.GetType(), name)
		assert.NotEmpty(t, f.GetHelp(), name)
		require.Len(t, f.GetMetric(), 1, name)
		m := f.GetMetric()[0]
		assert.Empty(t, m.GetLabel(), name)
		v := m.GetGauge().GetValue()
		if w.kind == dto.MetricType_COUNTER {
			v = m.GetCounter().GetValue()
		}
		assert.Equal(t, w.value, v, name)
	}
}

// Every field of memguard.Statistics has its metric: a field added there
// fails this test until the collector reports it.
func TestEveryFieldReported(t *testing.T) {
	fields := reflect.TypeFor[memguard.Statistics]().NumField()
	assert.Len(t, gather(t, promstats.NewCollector()), fields)
	assert.Len(t, expected(memguard.Stats()), fields)
}

// The values are read at each scrape.
func TestFollowsLiveBuffers(t *testing.T) {
	c := promstats.NewCollector()
	live := func() float64 {
		return gather(t, c)["memguard_live_buffers"].GetMetric()[0].GetGauge().GetValue()
	}
	before := live()
	b, err := memguard.NewBuffer(32)
	require.NoError(t, err)
	assert.Equal(t, before+1, live())
	b.Destroy()
	assert.Equal(t, before, live())
}
