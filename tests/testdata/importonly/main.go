// Command importonly uses memguard and its securememory package, and
// nothing else that could touch net/http, then reports every handler it
// finds on http.DefaultServeMux at the paths packages register by
// themselves (expvar, net/http/pprof, x/net/trace, metrics endpoints) and
// at the root, which a catch-all pattern would answer.
package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/securememory"
)

func main() {
	b, err := memguard.NewBuffer(32)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b.Destroy()
	s, err := new(securememory.Factory).CreateRandom(32)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s.Close()
	_ = memguard.Stats()

	found := 0
	for _, path := range []string{"/debug/vars", "/debug/pprof/", "/debug/requests", "/debug/events", "/metrics", "/", "/memguard"} {
		if _, pattern := http.DefaultServeMux.Handler(httptest.NewRequest(http.MethodGet, path, nil)); pattern != "" {
			fmt.Printf("handler at %s: pattern %q\n", path, pattern)
			found++
		}
	}
	fmt.Printf("handlers found: %d\n", found)
}
