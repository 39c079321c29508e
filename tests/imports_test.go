package tests

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deps lists pkg and every package it imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool must be on PATH for this test")
	out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
	require.NoError(t, err, "go list -deps %s", pkg)
	return strings.Fields(string(out))
}

// networking reports the packages of list that are expvar or any part of
// net: expvar's init registers /debug/vars on http.DefaultServeMux, and
// nothing can register a handler there, or open a socket, without
// importing net/http or net.
func networking(list []string) []string {
	var found []string
	for _, p := range list {
		if p == "expvar" || p == "net" || strings.HasPrefix(p, "net/") {
			found = append(found, p)
		}
	}
	return found
}

// Importing memguard or its securememory package must not change the
// process: no HTTP handler, no published variables.
func TestImportPullsInNoNetworking(t *testing.T) {
	for _, pkg := range []string{"github.com/securememory/memguard", "github.com/securememory/memguard/securememory"} {
		list := deps(t, pkg)
		require.Contains(t, list, pkg)
		assert.Empty(t, networking(list), "%s imports them", pkg)
	}
	// The check sees expvar where it is imported on purpose.
	assert.Contains(t, networking(deps(t, "github.com/securememory/memguard/expvarstats")), "expvar")
}

// The same at run time: a program that uses memguard and securememory,
// and imports net/http to look, finds no handler on the default mux.
func TestImportRegistersNoHTTPHandler(t *testing.T) {
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool must be on PATH for this test")
	out, err := exec.Command(goTool, "run", "./testdata/importonly").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "handlers found: 0\n", string(out))
}
