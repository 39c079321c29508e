//go:build cgo

package memguard

import (
	"math/rand/v2"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// entry is the place of b's registration, as remove finds it.
func (r *registry) entry(b *bufferState) *bufferState {
	sh := &r.shards[b.shard]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return *sh.at(int(b.slot))
}

// Entries spread over shards and blocks, removed in random order from
// several goroutines at once: every remaining state is where its slot
// says, the snapshot holds exactly the remaining ones, and emptied shards
// give back all but a spare block.
func TestRegistryShardsAndBlocks(t *testing.T) {
	var r registry
	const n = 5 * registryBlock * registryShards / 2
	states := make([]*bufferState, n)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				states[i] = new(bufferState)
				r.add(states[i], &Buffer{bufferState: states[i]})
			}
		})
	}
	wg.Wait()
	require.Equal(t, n, r.len())
	for _, s := range states {
		require.Same(t, s, r.entry(s))
	}

	rand.Shuffle(n, func(i, j int) { states[i], states[j] = states[j], states[i] })
	gone, kept := states[:n-100], states[n-100:]
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < len(gone); i += 4 {
				r.remove(gone[i])
			}
		})
	}
	wg.Wait()
	for _, s := range gone {
		assert.EqualValues(t, -1, s.slot)
	}
	for _, s := range kept {
		require.Same(t, s, r.entry(s))
	}
	snap := r.snapshot()
	assert.ElementsMatch(t, kept, snap)
	for k := range r.shards {
		assert.LessOrEqual(t, len(r.shards[k].blocks), 2, "shard %d keeps its block in use and one spare", k)
	}
	for _, s := range kept {
		r.remove(s)
	}
	assert.Zero(t, r.len())
	assert.Empty(t, r.snapshot())
	for k := range r.shards {
		assert.LessOrEqual(t, len(r.shards[k].blocks), 1, "empty shard %d keeps one spare block", k)
	}
}

// The state of a Buffer fits a 112-byte size class: a million compact
// secrets each hold one.
func TestBufferStateSize(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(bufferState{}), uintptr(112))
}
