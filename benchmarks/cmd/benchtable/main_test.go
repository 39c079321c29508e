package main

import (
	"testing"

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
