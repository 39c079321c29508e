// Command quickstart is the README's quick start.
package main

import (
	"fmt"
	"log"

	"github.com/securememory/memguard"
)

func main() {
	// On SIGINT, SIGTERM, SIGHUP or SIGQUIT: wipe every secret, exit 1.
	memguard.CatchSignal(nil)
	defer memguard.Purge()

	// A random 32-byte key, made straight in locked, guarded memory.
	key, err := memguard.NewBufferRandom(32)
	if err != nil {
		log.Fatal(err) // ErrMemoryLock names the limit and its remedies
	}
	defer key.Destroy()

	// Read the key only inside the callback; keep no copy of the slice.
	err = key.WithData(func(k []byte) error {
		fmt.Printf("using a %d-byte key\n", len(k))
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	// Encrypted at rest: Seal destroys the Buffer, Open makes a new one.
	sealed, err := key.Seal()
	if err != nil {
		log.Fatal(err)
	}
	opened, err := sealed.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer opened.Destroy()
	fmt.Println(opened) // prints the size and state, never the data
}
