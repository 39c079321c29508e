// Command many_credentials is the metrics-agent scenario: an agent holds
// credentials for many endpoints, sealed as Enclaves, and on each tick
// opens them all at once to use them. With SetDefaultOptions(Compact())
// every opened credential is a slot of a shared locked chunk instead of a
// locked page and two mappings of its own, so thousands fit under a small
// RLIMIT_MEMLOCK. It prints Stats() after each tick.
//
//	go run ./examples/many_credentials -n 10000 -ticks 3
package main

import (
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/securememory/memguard"
)

func main() {
	n := flag.Int("n", 10000, "credentials held")
	ticks := flag.Int("ticks", 3, "ticks to run")
	flag.Parse()

	// Before anything is sealed: secrets of up to 256 bytes are compact
	// from here on; larger ones get regions of their own, as without it.
	if err := memguard.SetDefaultOptions(memguard.Compact()); err != nil {
		log.Fatal(err)
	}
	defer memguard.Purge()

	creds := make([]*memguard.Enclave, *n)
	for i := range creds {
		// A real agent reads these from its configuration; the source
		// slice is wiped once sealed.
		src := []byte(fmt.Sprintf("endpoint-%06d:token-%032x", i, i*2654435761))
		e, err := memguard.NewEnclave(src)
		if err != nil {
			log.Fatal(err)
		}
		creds[i] = e
	}

	open := make([]*memguard.Buffer, *n)
	for tick := 1; tick <= *ticks; tick++ {
		start := time.Now()
		for i, e := range creds {
			b, err := e.Open()
			if err != nil {
				log.Fatalf("credential %d: %v", i, err)
			}
			open[i] = b
		}
		opened := time.Since(start)
		used := 0
		for _, b := range open {
			// Scraping an endpoint would use the credential here.
			err := b.WithData(func(cred []byte) error {
				used += len(cred)
				return nil
			})
			if err != nil {
				log.Fatal(err)
			}
		}
		s := memguard.Stats()
		fmt.Printf("tick %d: opened %d credentials in %v (%d bytes used)\n", tick, len(open), opened.Round(time.Millisecond), used)
		fmt.Printf("  live %d, compact %d, locked %d bytes (%.1f per credential), unlocked %d, memlock headroom %s\n",
			s.LiveBuffers, s.CompactBuffers, s.LockedBytes, float64(s.LockedBytes)/float64(len(open)), s.UnlockedBuffers, headroom(s))
		for i, b := range open {
			if err := b.Destroy(); err != nil {
				log.Fatal(err)
			}
			open[i] = nil
		}
	}
	s := memguard.Stats()
	fmt.Printf("after the last tick: live %d (the enclave key), compact %d, locked %d bytes\n", s.LiveBuffers, s.CompactBuffers, s.LockedBytes)
}

func headroom(s memguard.Statistics) string {
	if s.MemlockHeadroom == memguard.MemlockUnlimited {
		return "unlimited"
	}
	return fmt.Sprintf("%d bytes", s.MemlockHeadroom)
}
