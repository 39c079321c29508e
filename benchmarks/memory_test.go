package benchmarks

import (
	"errors"
	"os"
	"testing"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The memory targets of DESIGN §5 are not timings, so they are tested here
// as well as reported by `make bench`. MeasureFootprint needs a process
// that holds no buffers and no cached regions: this package's test binary
// allocates nothing else, and each test purges first (for -count > 1).

const footprintSecrets = 10000 // as many as `make bench` measures

func TestFootprintPerSecret(t *testing.T) {
	page := int64(os.Getpagesize())
	memguard.Purge()
	ours, err := MeasureFootprint("ours", footprintSecrets)
	if errors.Is(err, memguard.ErrMemoryLock) {
		// Root (as in CI) may lock past RLIMIT_MEMLOCK; others may not.
		t.Skipf("%d live secrets cannot all be locked here: %v", footprintSecrets, err)
	}
	require.NoError(t, err)
	peer, err := MeasureFootprint("peer", footprintSecrets)
	require.NoError(t, err)

	per := func(v int64) float64 { return float64(v) / footprintSecrets }
	t.Logf("per secret: RSS %.0f bytes (peer %.0f), locked %.0f, mappings %.2f",
		per(ours.RSSBytes), per(peer.RSSBytes), per(ours.LockedBytes), per(ours.Mappings))
	assert.LessOrEqual(t, per(ours.RSSBytes), 4.5*1024, "RSS per live 32-byte secret (target: at most 4.5 KiB)")
	assert.Less(t, ours.RSSBytes, peer.RSSBytes, "less resident memory than the peer")
	assert.Equal(t, float64(page), per(ours.LockedBytes), "one locked page per secret")
	assert.LessOrEqual(t, per(ours.Mappings), 3.0, "one region (guard, data, guard) per secret at most")
	assert.Zero(t, memguard.Stats().LiveBuffers, "MeasureFootprint destroys what it made")
}

func TestCofferAndOpenFootprint(t *testing.T) {
	page := os.Getpagesize()
	coffer, openMappings, openLocked, err := MeasureCofferAndOpen()
	require.NoError(t, err)
	assert.LessOrEqual(t, coffer, page, "a Coffer locks at most one page")
	assert.Equal(t, int64(page), openLocked, "an Open locks one region's page, not two")
	assert.LessOrEqual(t, openMappings, int64(3), "an Open maps one region (guard, data, guard)")
}
