package tests

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sourceComments returns every comment of the library's own Go and C
// sources (not tests, benchmarks or build output), by file.
func sourceComments(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	cBlock := regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`)
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "benchmarks", "build", "testdata", "tests", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(path, "_test.go"), strings.HasPrefix(d.Name(), "test_"):
			return nil
		case strings.HasSuffix(path, ".go"):
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
			if err != nil {
				return err
			}
			for _, g := range f.Comments {
				out[path] = append(out[path], g.Text())
			}
			// f.Comments includes cgo preambles, and the C comments in them.
		case strings.HasSuffix(path, ".c"), strings.HasSuffix(path, ".h"):
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[path] = append(out[path], cBlock.FindAllString(string(src), -1)...)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, out)
	return out
}

// The issue: "Code comments state invariants and reasons, not one
// machine's timings or history." A duration measured on some machine
// (nanoseconds or microseconds, "here") belongs in docs/PERFORMANCE.md,
// which make bench regenerates, not in a comment that nobody re-measures.
func TestCodeCommentsCiteNoMachineTimings(t *testing.T) {
	timing := regexp.MustCompile(`\b\d+(\.\d+)?\s?(ns|µs|us)\b`)
	for path, comments := range sourceComments(t) {
		for _, c := range comments {
			for _, m := range timing.FindAllString(c, -1) {
				assert.Fail(t, "a measured timing in a code comment", "%s: %q", path, m)
			}
		}
	}
}

// CHANGELOG.md says it records every change, and the package doc and the
// README send users there. The FIPS mode, the new calls and the changed
// behaviour of this issue are in the code; each must be in the changelog,
// the API changes to Option and CofferOption and the new failures of a
// negative WithChunkSize among them.
func TestChangelogRecordsEveryChange(t *testing.T) {
	log, err := os.ReadFile("../CHANGELOG.md")
	require.NoError(t, err)
	var missing []string
	for _, want := range []string{
		"NewBufferFromReaderUntil",
		"Enclave).WithData",
		"ErrCipher",
		"fips140=only",
		"WithChunkSize",
		"CofferOption",
		"io.EOF",
		"Counter",
	} {
		if !strings.Contains(string(log), want) {
			missing = append(missing, want)
		}
	}
	assert.Empty(t, missing, "changes CHANGELOG.md does not record")
}

// securememory.Counter's doc comment gives the lines that put the counters
// into go-metrics' default registry under Asherah's names. A program that
// uses the Asherah shim imports Asherah's securememory package, whose
// package-level variables have already registered "secret.allocated" and
// "secret.inuse" there (metrics.GetOrRegisterCounter). go-metrics'
// NewRegisteredFunctionalGauge drops Register's DuplicateMetric error, so
// without an Unregister first the bridge registers nothing, and the
// dashboard keeps showing Asherah's own counters, which stay at zero.
func TestCounterBridgeReplacesAsherahsCounters(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../securememory/securememory.go", nil, parser.ParseComments)
	require.NoError(t, err)
	var doc string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
			for _, s := range g.Specs {
				if s.(*ast.TypeSpec).Name.Name == "Counter" && g.Doc != nil {
					doc = g.Doc.Text()
				}
			}
		}
	}
	require.Contains(t, doc, "NewRegisteredFunctionalGauge", "the bridge is in Counter's doc")
	for _, counter := range []string{"AllocCounter", "InUseCounter"} {
		unregister := strings.Index(doc, "metrics.Unregister(securememory."+counter+".Name())")
		register := strings.Index(doc, "metrics.NewRegisteredFunctionalGauge(securememory."+counter+".Name()")
		require.GreaterOrEqual(t, register, 0, counter)
		assert.True(t, unregister >= 0 && unregister < register,
			"%s: the bridge must unregister Asherah's counter of that name before registering its own", counter)
	}
}

// The root SECURITY.md puts in scope "importing a package of this
// repository changing the process (... HTTP handlers)", but expvarstats,
// a package of this repository, registers /debug/vars when imported, by
// design and as its doc says. The scope must name the packages that make
// that promise.
func TestSecurityPolicyScopeMatchesExpvarstats(t *testing.T) {
	policy, err := os.ReadFile("../SECURITY.md")
	require.NoError(t, err)
	assert.False(t, strings.Contains(string(policy), "importing a package of this repository changing the process"),
		"SECURITY.md calls expvarstats's documented import side effect a vulnerability")
}

// GUIDE.md says a million live 32-byte compact secrets take "under 320
// bytes of RSS each"; PERFORMANCE.md's table, which make bench generates,
// must not report a figure that contradicts it, nor describe the reclaim
// of a Buffer as runtime.AddCleanup when the code uses a finalizer
// (reclaim.go: runtime.SetFinalizer).
func TestPerformanceAgreesWithGuide(t *testing.T) {
	guide, err := os.ReadFile("../docs/GUIDE.md")
	require.NoError(t, err)
	perf, err := os.ReadFile("../docs/PERFORMANCE.md")
	require.NoError(t, err)
	require.Contains(t, strings.Join(strings.Fields(string(guide)), " "), "under 320 bytes of RSS each")

	row := regexp.MustCompile(`(?m)^\| RSS per secret \([^|]*\| ([0-9.]+) B \|`).FindStringSubmatch(string(perf))
	require.NotNil(t, row, "PERFORMANCE.md has the million-compact RSS row")
	rss, err := strconv.ParseFloat(row[1], 64)
	require.NoError(t, err)
	assert.Less(t, rss, 320.0, "PERFORMANCE.md's latest RSS per compact secret contradicts GUIDE.md")
	code, err := os.ReadFile("../reclaim.go")
	require.NoError(t, err)
	usesCleanup := strings.Contains(string(code), "runtime.AddCleanup(")
	assert.Equal(t, usesCleanup, strings.Contains(string(perf), "runtime.AddCleanup"),
		"PERFORMANCE.md names the reclaim mechanism reclaim.go uses")
	assert.Equal(t, !usesCleanup, strings.Contains(string(perf), "finalizer"),
		"PERFORMANCE.md names the reclaim mechanism reclaim.go uses")
}
