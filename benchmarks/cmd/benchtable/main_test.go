package main

import (
	"testing"

	"github.com/securememory/memguard/benchmarks"
	"github.com/stretchr/testify/assert"
)

func TestMedian(t *testing.T) {
	assert.Equal(t, 2.0, median([]float64{3, 1, 2}))
	assert.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
	xs := []float64{3, 1, 2}
	median(xs)
	assert.Equal(t, []float64{3, 1, 2}, xs, "the rounds are left in order")
}

func TestDuration(t *testing.T) {
	assert.Equal(t, "19.4 ns", duration(19.43))
	assert.Equal(t, "4.17 µs", duration(4170))
	assert.Equal(t, "1.76 ms", duration(1.76e6))
}

func TestTimeCell(t *testing.T) {
	assert.Equal(t, "19.4 ns", timeCell(19.43, 0))
	assert.Equal(t, "500.00 µs (2.10 GB/s)", timeCell(5e5, 1<<20))
}

func TestOptionTargets(t *testing.T) {
	ratio := benchmarks.OptionOp{MaxRatio: 1.5}
	assert.Equal(t, "≤ 1.5× ordinary", optionTarget(ratio))
	assert.Equal(t, "meets", optionVerdict(ratio, 150, 100))
	assert.Equal(t, "**misses**", optionVerdict(ratio, 151, 100))
	abs := benchmarks.OptionOp{MaxNs: 4000}
	assert.Equal(t, "≤ 4.00 µs", optionTarget(abs))
	assert.Equal(t, "meets", optionVerdict(abs, 3999, 20))
	assert.Equal(t, "**misses**", optionVerdict(abs, 4001, 20))
	assert.Equal(t, "reported", optionTarget(benchmarks.OptionOp{}))
	assert.Equal(t, "", optionVerdict(benchmarks.OptionOp{}, 1e6, 1))
}

func TestTargetWithThroughput(t *testing.T) {
	op := benchmarks.Op{Target: 4, Bytes: 1 << 20, MinGBps: 2}
	assert.Equal(t, "≥ 4×, ≥ 2 GB/s", target(op))
	assert.True(t, meets(op, 4.5, 2.1))
	assert.False(t, meets(op, 4.5, 1.9), "fast enough against the peer, too slow in GB/s")
	assert.False(t, meets(op, 3.9, 2.5))

	plain := benchmarks.Op{Target: 30}
	assert.Equal(t, "≥ 30×", target(plain))
	assert.True(t, meets(plain, 30, 0), "no throughput asked for")
}
