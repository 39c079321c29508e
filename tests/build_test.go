package tests

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without cgo the build must fail with one clear message, not a wall of
// undefined names.
func TestBuildWithoutCgoFailsClearly(t *testing.T) {
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool must be on PATH for this test")
	cmd := exec.Command(goTool, "build", "-o", os.DevNull, "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the build should fail without cgo")
	text := string(out)
	assert.Contains(t, text, "memguard_requires_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler")
	assert.Equal(t, 1, strings.Count(text, "undefined:"), text)
}
