//go:build cgo

package memguard

import (
	"sync"
	"unsafe"
)

// registry tracks the state of every live Buffer so that Purge can reach
// them all. It is split into shards, each with its own lock, so that
// goroutines creating and destroying Buffers at once seldom meet on one.
// A shard keeps its entries in fixed blocks: growing never copies them,
// so a million Buffers leave no garbage of outgrown arrays behind. Adding
// and removing are O(1): each state remembers its place, and removal
// moves the shard's last entry into the hole.
type registry struct {
	shards [registryShards]registryShard
}

const (
	registryShardBits = 4
	registryShards    = 1 << registryShardBits
	registryBlock     = 1024 // entries in a block
)

type registryShard struct {
	mu     sync.Mutex
	blocks []*[registryBlock]*bufferState
	n      int // entries in use: blocks hold n, then nils
	// young lists the handles added since the last sweep, whose
	// cleanups are still to be added (reclaim.go).
	young youngList
	_     [64]byte // keeps the shards' locks off each other's cache lines
}

var buffers registry

// add puts b, not yet shared, in the shard its memory picks, and h, its
// handle, among the shard's young handles. A compact secret's shard is
// its chunk's: goroutines allocating at once draw from different chunks
// (the core shards them by thread), so mostly from different registry
// shards, and as a shard lists a chunk's slots in the order they were
// made, Purge frees them in that order, chunk after chunk. A region's
// shard is its data's address's.
func (r *registry) add(b *bufferState, h *Buffer) {
	const fib = 0x9e3779b97f4a7c15 // 2^64 / golden ratio, odd: spreads the bits
	key := uintptr(unsafe.Pointer(unsafe.SliceData(b.bytes())))
	if b.compact {
		key = uintptr(unsafe.Pointer(b.arenaSlot.m.chunk))
	}
	b.shard = uint8(uint64(key) * fib >> (64 - registryShardBits))
	sh := &r.shards[b.shard]
	sh.mu.Lock()
	i := sh.n
	if i == len(sh.blocks)*registryBlock {
		sh.blocks = append(sh.blocks, new([registryBlock]*bufferState))
	}
	*sh.at(i) = b
	sh.n++
	b.slot = int32(i)
	sh.young.add(youngHandle{h, b})
	sh.mu.Unlock()
	sweepSoon()
}

// remove takes b, which must be registered, out of its shard.
func (r *registry) remove(b *bufferState) {
	sh := &r.shards[b.shard]
	sh.mu.Lock()
	i := int(b.slot)
	last := sh.at(sh.n - 1)
	moved := *last
	*sh.at(i) = moved
	moved.slot = b.slot
	*last = nil
	sh.n--
	// Blocks beyond the one in use and one spare go back to the collector.
	for nb := len(sh.blocks); nb > 1 && sh.n <= (nb-2)*registryBlock; nb-- {
		sh.blocks[nb-1] = nil
		sh.blocks = sh.blocks[:nb-1]
	}
	b.slot = -1
	sh.mu.Unlock()
}

// at is the place of entry i. The caller holds the shard's lock.
func (sh *registryShard) at(i int) **bufferState {
	return &sh.blocks[i/registryBlock][i%registryBlock]
}

// snapshot copies the live set, so callers can act on each Buffer without
// holding a lock (destroying one removes it from here). Each shard is
// copied under its own lock: a Buffer added to a shard already copied is
// left out, as one added after the call would be.
func (r *registry) snapshot() []*bufferState {
	all := make([]*bufferState, 0, r.len())
	for k := range r.shards {
		sh := &r.shards[k]
		sh.mu.Lock()
		for i, blk := range sh.blocks {
			n := min(sh.n-i*registryBlock, registryBlock)
			if n <= 0 {
				break
			}
			all = append(all, blk[:n]...)
		}
		sh.mu.Unlock()
	}
	return all
}

// len is the number of registered states.
func (r *registry) len() int {
	n := 0
	for k := range r.shards {
		sh := &r.shards[k]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}
