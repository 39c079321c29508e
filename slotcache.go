//go:build cgo

package memguard

// #include "csrc/memguard.h"
import "C"

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// slotCache keeps slots that compact Buffers gave back, checked and wiped
// but still allocated in their arena, so that the next compact secret of
// the same capacity and kind of memory takes one without a call into the
// core: the two cgo calls of an allocation and a free cost more than the
// rest of making and destroying a compact secret together.
//
// It takes only slots a secret filled (size == cap, the common key sizes
// 32, 64, 128 and 256 bytes): a shorter secret's padding holds canary
// bytes that only the core writes. A cached slot holds zeros, as a free
// slot of the core does; its canaries are checked when it is cached and
// again whenever the Buffer that takes it is used.
//
// The cache is a few shards with a lock each. A slot goes to the shard of
// its chunk, and a goroutine taking one looks first in the shard its
// processor used last (a sync.Pool of shards, which keeps one per
// processor): goroutines on different threads draw from different chunks
// (the core shards them by thread), so they seldom meet on one lock, and
// one that destroys a secret and makes another finds its slot again. A
// shard holds at most slotCacheDepth slots per capacity and kind. A
// cached slot keeps its chunk, up to 2 MiB of locked memory, from being
// released, so every trim of the arenas flushes the cache, every slot
// given back to the core: the trim arenaSet.release asks for, at most
// arenaIdle after a slot came back, Purge's, and that of an allocation
// the kernel refuses for want of room.
type slotCache struct {
	shards [slotCacheShards]slotCacheShard
	// near keeps, per processor as far as it can, the shard (a
	// *slotCacheShard) of the last slot it took or allocated; next numbers
	// the shards it makes up for a processor that has none. The pool may
	// drop a shard: the shard itself stays in shards, and its slots with
	// it.
	near sync.Pool
	next atomic.Uint32
}

const (
	slotCacheShardBits = 3
	slotCacheShards    = 1 << slotCacheShardBits
	slotCacheDepth     = 8
)

type slotCacheShard struct {
	mu    sync.Mutex
	lists [numArenaKinds][C.MG_ARENA_CLASSES]slotList
	_     [64]byte // keeps the shards' locks off each other's cache lines
}

// slotList is a stack of cached slots.
type slotList struct {
	n     int
	slots [slotCacheDepth]C.mg_slot
}

// shardOf is the shard for slots of chunk.
func (c *slotCache) shardOf(chunk *C.mg_chunk) *slotCacheShard {
	const fib = 0x9e3779b97f4a7c15 // 2^64 / golden ratio, odd: spreads the bits
	return &c.shards[uint64(uintptr(unsafe.Pointer(chunk)))*fib>>(64-slotCacheShardBits)]
}

// remember keeps the shard of s, a slot the core just allocated, as the
// one the calling goroutine's processor looks in first.
func (c *slotCache) remember(s *slot) { c.near.Put(c.shardOf(s.m.chunk)) }

// classOf is the class k of a slot of capacity 32 << k, and whether size
// is such a capacity: a secret of another size is never cached.
func classOf(size int) (int, bool) {
	k := bits.TrailingZeros(uint(size)) - 5
	return k, k >= 0 && k < C.MG_ARENA_CLASSES && size == 32<<k
}

// kind is the kind of arena a live slot came from.
func (s *slot) kind() arenaKind {
	switch {
	case s.m.secret != 0:
		return arenaSecret
	case s.m.locked != 0:
		return arenaLocked
	}
	return arenaUnlocked
}

// take makes s, which must be zero, a cached slot for a secret of size
// bytes from an arena of the kind, if the shard the calling goroutine's
// processor used last holds one, and reports whether it did. The slot
// holds zeros.
func (c *slotCache) take(s *slot, size int, kind arenaKind) bool {
	k, ok := classOf(size)
	if !ok {
		return false
	}
	sh, _ := c.near.Get().(*slotCacheShard)
	if sh == nil {
		sh = &c.shards[c.next.Add(1)%slotCacheShards]
	}
	sh.mu.Lock()
	l := &sh.lists[kind][k]
	if l.n == 0 {
		sh.mu.Unlock()
		return false // the caller's allocation from the core remembers its shard
	}
	l.n--
	s.m, l.slots[l.n] = l.slots[l.n], C.mg_slot{}
	sh.mu.Unlock()
	c.near.Put(sh)
	return true
}

// give caches s, a live slot, if its secret fills it, its canaries are
// intact and its chunk's shard has room, and reports whether
// it did; then s is zero and its bytes are wiped. Otherwise s is left as
// it was, for the core to free (slot.free), which also quarantines a slot
// whose canaries are broken.
func (c *slotCache) give(s *slot) bool {
	k, ok := classOf(int(s.m.size))
	if !ok || s.m.size != s.m.cap || !s.filledIntact() {
		return false
	}
	kind := s.kind()
	sh := c.shardOf(s.m.chunk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l := &sh.lists[kind][k]
	if l.n == slotCacheDepth {
		return false
	}
	s.wipe()
	l.slots[l.n], s.m = s.m, C.mg_slot{}
	l.n++
	return true
}

// flush gives every cached slot back to the core, and reports how many
// it gave and the first failure the core found (ErrProtection if a chunk
// that emptied could not be unmapped).
func (c *slotCache) flush() (n int, err error) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for kind := range sh.lists {
			for k := range sh.lists[kind] {
				l := &sh.lists[kind][k]
				for ; l.n > 0; l.n-- {
					s := slot{m: l.slots[l.n-1]}
					l.slots[l.n-1] = C.mg_slot{}
					if ferr := s.free(); err == nil {
						err = ferr
					}
					n++
				}
			}
		}
		sh.mu.Unlock()
	}
	return n, err
}
