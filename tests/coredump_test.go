//go:build linux

package tests

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const seedEnv = "MEMGUARD_TEST_SEED"

// The secret is seed^0xA5, the one in secret memory seed^0x3C, and the
// control seed^0x5A: none exists in the child's memory except where the
// child puts it, byte by byte.
func xorWith(seed []byte, k byte) []byte {
	out := make([]byte, len(seed))
	for i := range seed {
		out[i] = seed[i] ^ k
	}
	return out
}

// xorBuffer is a mutable Buffer made with opts holding seed^k, written in
// place byte by byte.
func xorBuffer(seed []byte, k byte, opts ...memguard.Option) *memguard.Buffer {
	b, err := memguard.NewBuffer(len(seed), opts...)
	check(err == nil, "buffer: %v", err)
	check(b.WithDataMut(func(d []byte) error {
		for i := range d {
			d[i] = seed[i] ^ k
		}
		return nil
	}) == nil, "fill")
	return b
}

func init() {
	children["hold secrets for gcore"] = func() {
		seed, err := hex.DecodeString(os.Getenv(seedEnv))
		check(err == nil, "seed: %v", err)
		b := xorBuffer(seed, 0xA5)
		// The same secret again, sealed and opened: a frozen buffer.
		e, err := b.Seal()
		check(err == nil, "seal: %v", err)
		opened, err := e.Open()
		check(err == nil, "open: %v", err)
		secret := xorBuffer(seed, 0x3C, memguard.SecretMemory())
		control := xorWith(seed, 0x5A) // ordinary heap memory: must be in the dump
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n') // until the parent is done
		runtime.KeepAlive(control)
		runtime.KeepAlive(opened)
		runtime.KeepAlive(secret)
	}
}

func TestCoreDumpHasNoSecrets(t *testing.T) {
	gcore, err := exec.LookPath("gcore")
	if err != nil {
		t.Skip("gcore not installed (Debian package gdb; .ci/run installs it)")
	}
	seed := make([]byte, 32)
	rand.Read(seed)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=hold secrets for gcore", seedEnv+"="+hex.EncodeToString(seed))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait() // stderr is complete only once the child is gone
		t.Fatalf("child not ready (%q, %v): %s", line, err, stderr.String())
	}

	prefix := filepath.Join(t.TempDir(), "core")
	out, err := exec.Command(gcore, "-o", prefix, fmt.Sprint(cmd.Process.Pid)).CombinedOutput()
	require.NoError(t, err, "gcore: %s", out)
	core, err := os.ReadFile(fmt.Sprintf("%s.%d", prefix, cmd.Process.Pid))
	require.NoError(t, err)

	assert.True(t, bytes.Contains(core, xorWith(seed, 0x5A)), "control: the heap copy is in the dump, so the search works")
	assert.False(t, bytes.Contains(core, xorWith(seed, 0xA5)), "a live secret is in the core dump")
	assert.False(t, bytes.Contains(core, xorWith(seed, 0x3C)), "a live secret in secret memory is in the core dump")
}
