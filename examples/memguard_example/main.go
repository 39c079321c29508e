// Command memguard_example walks through every capability of the library,
// printing what it does at each step: run it with `make example`.
package main

import (
	"encoding/json"
	"expvar"
	"fmt"
	"os"

	"github.com/securememory/memguard/expvarstats"
)

func main() {
	steps := []func() error{buffers, readersAndCopies, sealAndOpen, coffers, streams, secrets, emergencies}
	for _, step := range steps {
		if err := step(); err != nil {
			fmt.Fprintln(os.Stderr, "example failed:", err)
			os.Exit(1)
		}
	}

	if err := expvarstats.Publish("memguard"); err != nil {
		fmt.Fprintln(os.Stderr, "example failed:", err)
		os.Exit(1)
	}
	var stats any
	json.Unmarshal([]byte(expvar.Get("memguard").String()), &stats)
	out, _ := json.MarshalIndent(stats, "    ", "  ")
	step("final Stats, as published through expvar:")
	fmt.Println("   ", string(out))
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func note(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }
