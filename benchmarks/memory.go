package benchmarks

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	peer "github.com/awnumar/memguard"
	"github.com/securememory/memguard"
)

// Footprint is what n live 32-byte secrets add to a process.
type Footprint struct {
	Secrets     int
	RSSBytes    int64 // resident memory
	LockedBytes int64 // VmLck
	Mappings    int64 // lines in /proc/self/maps
}

// processFootprint reads the current process's RSS, locked memory and
// mapping count.
func processFootprint() (Footprint, error) {
	var f Footprint
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return f, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		var kb int64
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "VmRSS:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &kb)
			f.RSSBytes = kb << 10
		case strings.HasPrefix(line, "VmLck:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmLck:"), "%d", &kb)
			f.LockedBytes = kb << 10
		}
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return f, err
	}
	f.Mappings = int64(bytes.Count(maps, []byte("\n")))
	return f, nil
}

// MeasureFootprint creates n live 32-byte secrets with the named library
// ("ours", "compact" for ours with Compact(), or "peer") and returns what
// the library added for them: the handles, states, cleanup records and
// registry entries included, as RSS; the caller's slice of handles not.
// Run it in a fresh process: earlier allocations would blur the numbers.
func MeasureFootprint(lib string, n int) (Footprint, error) {
	secret := bytes.Repeat([]byte{0x5a}, 32)
	src := make([]byte, len(secret)) // reused: both libraries wipe it
	// The caller's own slice of handles is made, and its pages touched,
	// before the first reading: it is the caller's memory, not the
	// library's.
	var keepOurs []*memguard.Buffer
	var keepPeer []*peer.LockedBuffer
	if lib == "peer" {
		keepPeer = slices.Grow(keepPeer, n)
		clear(keepPeer[:n])
	} else {
		keepOurs = slices.Grow(keepOurs, n)
		clear(keepOurs[:n])
	}
	before, err := processFootprint()
	if err != nil {
		return Footprint{}, err
	}
	for i := 0; i < n; i++ {
		copy(src, secret)
		switch lib {
		case "ours":
			b, err := memguard.NewBufferFromBytes(src)
			if err != nil {
				return Footprint{}, err
			}
			keepOurs = append(keepOurs, b)
		case "compact":
			b, err := memguard.NewBufferFromBytes(src, memguard.Compact())
			if err != nil {
				return Footprint{}, err
			}
			keepOurs = append(keepOurs, b)
		case "peer":
			keepPeer = append(keepPeer, peer.NewBufferFromBytes(src))
		default:
			return Footprint{}, fmt.Errorf("unknown library %q", lib)
		}
	}
	if lib != "peer" {
		// memguard adds a live Buffer's reclaim cleanup within 10 ms of
		// its creation (its reclaim.go): read after that, so that the
		// last Buffers made count with theirs.
		time.Sleep(50 * time.Millisecond)
	}
	after, err := processFootprint()
	if err != nil {
		return Footprint{}, err
	}
	for _, b := range keepOurs {
		b.Destroy()
	}
	for _, b := range keepPeer {
		b.Destroy()
	}
	return Footprint{
		Secrets:     n,
		RSSBytes:    after.RSSBytes - before.RSSBytes,
		LockedBytes: after.LockedBytes - before.LockedBytes,
		Mappings:    after.Mappings - before.Mappings,
	}, nil
}

// MeasureCofferAndOpen reports the locked bytes of one new Coffer, and the
// mappings and locked bytes that one live Open result adds once the
// enclave key exists.
func MeasureCofferAndOpen() (cofferLocked int, openMappings, openLocked int64, err error) {
	// LockedBytes counts the region cache's pages too, and a Coffer that
	// took its page from there would seem to lock nothing: empty it.
	memguard.Purge()
	before := memguard.Stats().LockedBytes
	c, err := memguard.NewCoffer()
	if err != nil {
		return 0, 0, 0, err
	}
	cofferLocked = memguard.Stats().LockedBytes - before
	c.Destroy()

	// Purge empties the region cache, and sealing from bytes maps no
	// buffer, so the Open below must map its region afresh.
	memguard.Purge()
	e, err := memguard.NewEnclave(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		return 0, 0, 0, err
	}
	pre, err := processFootprint()
	if err != nil {
		return 0, 0, 0, err
	}
	b, err := e.Open()
	if err != nil {
		return 0, 0, 0, err
	}
	post, err := processFootprint()
	b.Destroy()
	return cofferLocked, post.Mappings - pre.Mappings, post.LockedBytes - pre.LockedBytes, err
}

// CompactScale is the time of each phase of n live 32-byte compact
// secrets: created (NewBufferFromBytes), each verified (Verify), then all
// purged (Purge).
type CompactScale struct {
	Secrets               int
	Create, Verify, Purge time.Duration
}

// MeasureCompactScale times the phases of CompactScale. Run it in a fresh
// process, as MeasureFootprint.
func MeasureCompactScale(n int) (CompactScale, error) {
	sc := CompactScale{Secrets: n}
	src := make([]byte, 32)
	keep := make([]*memguard.Buffer, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		src[0], src[1], src[2] = byte(i), byte(i>>8), byte(i>>16)
		b, err := memguard.NewBufferFromBytes(src, memguard.Compact())
		if err != nil {
			memguard.Purge()
			return sc, err
		}
		keep = append(keep, b)
	}
	sc.Create = time.Since(start)
	start = time.Now()
	for _, b := range keep {
		if err := b.Verify(); err != nil {
			memguard.Purge()
			return sc, err
		}
	}
	sc.Verify = time.Since(start)
	start = time.Now()
	memguard.Purge()
	sc.Purge = time.Since(start)
	return sc, nil
}
