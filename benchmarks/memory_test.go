package benchmarks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The memory targets are not timings, so they are tested here
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

// compactChild, set in a child's environment, makes TestCompactFootprint
// measure and print the footprint instead of starting a child.
const compactChild = "MEMGUARD_COMPACT_FOOTPRINT_CHILD"

// A million live 32-byte compact secrets, measured in a fresh process (a
// child running this test alone) so that nothing allocated before blurs the
// figures: at most 64 bytes locked, 1/1000 of a mapping and 320 bytes of
// RSS per secret, the handle, state, finalizer record and registry entry
// included.
func TestCompactFootprint(t *testing.T) {
	const n = 1_000_000
	if os.Getenv(compactChild) == "1" {
		f, err := MeasureFootprint("compact", n)
		if err != nil {
			fmt.Println("ERROR", err)
			return
		}
		json.NewEncoder(os.Stdout).Encode(f)
		return
	}
	child := exec.Command(os.Args[0], "-test.run=^TestCompactFootprint$")
	child.Env = append(os.Environ(), compactChild+"=1")
	out, err := child.Output()
	require.NoError(t, err, "%s", out)
	var f Footprint
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ERROR") {
			if strings.Contains(line, "lock") {
				t.Skipf("%d live compact secrets cannot all be locked here: %s", n, line)
			}
			t.Fatal(line)
		}
		if json.Unmarshal([]byte(line), &f) == nil && f.Secrets == n {
			break
		}
	}
	require.Equal(t, n, f.Secrets, "child output: %s", out)
	per := func(v int64) float64 { return float64(v) / n }
	t.Logf("per compact secret: RSS %.1f bytes, locked %.1f, mappings %.5f (%d in all)",
		per(f.RSSBytes), per(f.LockedBytes), per(f.Mappings), f.Mappings)
	assert.LessOrEqual(t, per(f.LockedBytes), 64.0, "locked bytes per live 32-byte compact secret")
	assert.LessOrEqual(t, per(f.RSSBytes), 320.0, "RSS per live 32-byte compact secret")
	assert.LessOrEqual(t, f.Mappings, int64(1000), "mappings for a million compact secrets")
}
