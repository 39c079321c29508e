package memguard

import (
	"math"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheReusesRegions(t *testing.T) {
	drainCache()
	b, err := NewBufferFromBytes(pattern(32))
	require.NoError(t, err)
	first, oldCanary := b.region, *b.region.expectedCanary()
	require.NoError(t, b.Destroy())
	assert.Equal(t, 1, Stats().CachedRegions)

	c, err := NewBuffer(20) // same page count, different size
	require.NoError(t, err)
	defer c.Destroy()
	assert.Same(t, first, c.region, "the cached region is reused")
	assert.Zero(t, Stats().CachedRegions)
	assert.NotEqual(t, oldCanary, *c.region.expectedCanary(), "with a fresh canary")
	assert.Equal(t, make([]byte, 20), read(t, c), "zero-filled: the old secret is gone")
	assert.True(t, c.Mutable(), "writable again, though the old buffer was frozen")
	require.NoError(t, c.WithDataMut(func(d []byte) error { copy(d, pattern(20)); return nil }))
	assert.NoError(t, c.Verify(), "canaries and padding intact in the new layout")
}

func TestCacheSkipsCorruptedRegions(t *testing.T) {
	drainCache()
	b, err := NewBuffer(20)
	require.NoError(t, err)
	lockedWithIt := Stats().LockedBytes
	corruptions["tail canary"](b.region)
	assert.ErrorIs(t, b.Destroy(), ErrCanaryCorrupt)
	assert.Zero(t, Stats().CachedRegions, "a corrupted region is unmapped, not cached")
	assert.Equal(t, lockedWithIt-regionPagesFor(20), Stats().LockedBytes, "its locked page is given back")

	c, err := NewBuffer(20)
	require.NoError(t, err)
	defer c.Destroy()
	assert.NoError(t, c.Verify(), "a fresh region, with intact canaries")
}

func TestCacheIsBounded(t *testing.T) {
	drainCache()
	var bufs []*Buffer
	for i := 0; i < cacheMaxRegions+50; i++ {
		b, err := NewBuffer(32)
		require.NoError(t, err)
		bufs = append(bufs, b)
	}
	for _, b := range bufs {
		require.NoError(t, b.Destroy())
	}
	assert.Equal(t, cacheMaxRegions, Stats().CachedRegions)

	big, err := NewBuffer(cacheMaxBytes) // larger than the whole cache
	require.NoError(t, err)
	require.NoError(t, big.Destroy())
	assert.Equal(t, cacheMaxRegions, Stats().CachedRegions, "too big to cache")
	assert.LessOrEqual(t, cache.bytes.Load(), int64(cacheMaxBytes))
	drainCache()
}

func TestPurgeEmptiesCache(t *testing.T) {
	b, err := NewBuffer(32)
	require.NoError(t, err)
	require.NoError(t, b.Destroy())
	require.NotZero(t, Stats().CachedRegions)
	Purge()
	assert.Zero(t, Stats().CachedRegions)
	assert.Zero(t, Stats().LockedBytes)

	c, err := NewBuffer(32) // a fresh region, not the purged one
	require.NoError(t, err)
	assert.NoError(t, c.Verify())
	require.NoError(t, c.Destroy())
}

func TestCacheRespectsLockPolicy(t *testing.T) {
	defer SetLockPolicy(LockRequired)
	drainCache()
	SetLockPolicy(LockDisabled)
	unlocked, err := NewBuffer(32)
	require.NoError(t, err)
	require.NoError(t, unlocked.Destroy())
	require.Equal(t, 1, Stats().CachedRegions)

	SetLockPolicy(LockRequired)
	locked, err := NewBuffer(32)
	require.NoError(t, err)
	assert.NotZero(t, locked.region.lockedBytes(), "an unlocked cached region never serves LockRequired")
	assert.Equal(t, 1, Stats().CachedRegions)
	require.NoError(t, locked.Destroy())

	SetLockPolicy(LockDisabled)
	again, err := NewBuffer(32)
	require.NoError(t, err)
	assert.Zero(t, again.region.lockedBytes(), "nor a locked one LockDisabled")
	require.NoError(t, again.Destroy())
	drainCache()
}

// regionPagesFor mirrors the C core's mg_pages_for; a region the core maps
// must have exactly the length the Go side files it under in the cache.
func TestRegionPagesForMatchesC(t *testing.T) {
	page := int(pageSize)
	sizes := []int{1, 15, 16, 17, 31, 32, 33}
	for k := 1; k <= 4; k++ {
		for d := -2*canaryLen - 1; d <= canaryLen+1; d++ {
			sizes = append(sizes, k*page+d)
		}
	}
	for _, size := range sizes {
		r, err := newRegion(size, 0)
		require.NoError(t, err, "size %d", size)
		assert.Equal(t, int(r.pages_len), regionPagesFor(size), "size %d", size)
		require.NoError(t, r.free())
	}
	assert.Zero(t, regionPagesFor(0))
	assert.Zero(t, regionPagesFor(-1))
	assert.Positive(t, regionPagesFor(math.MaxInt-2*page), "sizes near MaxInt still fit")
	assert.Zero(t, regionPagesFor(math.MaxInt), "beyond MaxInt once rounded up")
}

// regionPagesForPage is the core's mg_pages_for_page at the page sizes of
// amd64 and most arm64 Linux (4 KiB), Apple silicon and some arm64 Linux
// (16 KiB) and other arm64 Linux (64 KiB), whatever this machine's is: for
// sizes on and around page and alignment edges, and sizes so large that
// the rounding overflows.
func TestRegionPagesForPageMatchesC(t *testing.T) {
	for _, page := range []uint64{4 << 10, 16 << 10, 64 << 10} {
		p := int(page)
		sizes := []int{-1, 0, 1, 2, 15, 16, 17, 31, 32, 33, 100, 1000,
			math.MaxInt - p, math.MaxInt - 2*p, math.MaxInt - 3*p, math.MaxInt - 1, math.MaxInt}
		for k := 1; k <= 5; k++ {
			for d := -2*canaryLen - 1; d <= canaryLen+1; d++ {
				sizes = append(sizes, k*p+d)
			}
		}
		for n := 1; n <= 3*p; n += 7 {
			sizes = append(sizes, n)
		}
		for _, size := range sizes {
			got := regionPagesForPage(size, page)
			if size < 1 {
				assert.Zero(t, got, "page %d, size %d", page, size)
				continue
			}
			want := corePagesForPage(size, page)
			if want > math.MaxInt {
				want = 0 // an int cannot hold it
			}
			require.Equal(t, want, uint64(got), "page %d, size %d", page, size)
		}
		assert.Equal(t, p, regionPagesForPage(1, page))
		assert.Equal(t, p, regionPagesForPage(p-canaryLen, page), "the largest secret one page holds")
		assert.Equal(t, 2*p, regionPagesForPage(p-canaryLen+1, page))
	}
	assert.Zero(t, regionPagesForPage(1, 0))
	assert.Zero(t, corePagesForPage(1, 0))
}

// At maxRegions the library refuses to map, as the kernel would at
// vm.max_map_count, and a region given back makes room again.
func TestRegionBudget(t *testing.T) {
	drainCache()
	held := int64(Stats().LiveBuffers)
	defer func(f func() int64) { maxRegions = f }(maxRegions)
	maxRegions = func() int64 { return held + 3 }

	var bufs []*Buffer
	defer func() {
		for _, b := range bufs {
			b.Destroy()
		}
	}()
	for range 3 {
		b, err := NewBuffer(32)
		require.NoError(t, err)
		bufs = append(bufs, b)
	}
	b, err := NewBuffer(32)
	assert.Nil(t, b)
	require.ErrorIs(t, err, ErrOutOfMemory)
	assert.ErrorIs(t, err, syscall.ENOMEM, "as mmap at the limit")
	assert.Contains(t, err.Error(), "vm.max_map_count")

	require.NoError(t, bufs[0].Destroy()) // cached: still mapped
	bufs = bufs[1:]
	b, err = NewBuffer(5000) // another size: the cache is emptied to make room
	require.NoError(t, err, "the cached region's mapping is given back")
	bufs = append(bufs, b)
	assert.Zero(t, Stats().CachedRegions)
}

// A refusal that nothing in the process can answer (no cache to drain,
// no release under way, no room by the library's count) is reported after
// one more try, not after every retry's wait.
func TestRetryForRoomGivesUpAtOnce(t *testing.T) {
	Purge() // nothing cached
	tries := 0
	err := retryForRoom(1<<62, func() error {
		tries++
		return ErrMemoryLock
	})
	assert.ErrorIs(t, err, ErrMemoryLock)
	assert.Equal(t, 1, tries)
}
