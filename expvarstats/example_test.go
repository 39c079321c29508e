package expvarstats_test

import (
	"expvar"
	"fmt"
	"log"

	"github.com/securememory/memguard/expvarstats"
)

// Publish Stats once, at start-up; net/http then serves them at
// /debug/vars on http.DefaultServeMux, under the name given.
func ExamplePublish() {
	if err := expvarstats.Publish("memguard_example"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(expvar.Get("memguard_example") != nil)
	// Output: true
}
