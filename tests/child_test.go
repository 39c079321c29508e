// Package tests holds black-box tests of memguard, many of which run the
// test binary again as a child process that is expected to die.
package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

const (
	childEnv       = "MEMGUARD_TEST_CHILD"
	survivedMarker = "CHILD SURVIVED"
)

// children are the bodies run in child processes, by name. A child that
// returns prints survivedMarker and exits 0.
var children = map[string]func(){}

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		body, ok := children[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "no child %q\n", name)
			os.Exit(3)
		}
		body()
		fmt.Println(survivedMarker)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type childResult struct {
	stdout, stderr string
	exitCode       int
	signaled       bool
	signal         syscall.Signal
}

// runChild runs the named child body in a fresh copy of the test binary.
func runChild(t *testing.T, name string, configure ...func(*exec.Cmd)) childResult {
	t.Helper()
	if _, ok := children[name]; !ok {
		t.Fatalf("no child %q", name)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, "GOTRACEBACK=single")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	for _, c := range configure {
		c(cmd)
	}
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("child %s did not run: %v", name, err)
	}
	res := childResult{stdout: stdout.String(), stderr: stderr.String(), exitCode: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.signaled, res.signal = true, ws.Signal()
	}
	return res
}
