package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's quick start is examples/quickstart, which go vet and the
// cross builds compile: so the README's program compiles.
func TestReadmeQuickStartIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "\n## Quick start\n")
	require.True(t, ok, "README has no Quick start section")
	_, rest, ok = strings.Cut(rest, "```go\n")
	require.True(t, ok, "Quick start has no Go block")
	block, _, ok := strings.Cut(rest, "```\n")
	require.True(t, ok)

	src, err := os.ReadFile("../examples/quickstart/main.go")
	require.NoError(t, err)
	program := string(src)
	for strings.HasPrefix(program, "//") { // the command's doc comment
		_, program, _ = strings.Cut(program, "\n")
	}
	assert.Equal(t, program, block)
}

func TestReadmeStaysShort(t *testing.T) {
	info, err := os.Stat("../README.md")
	require.NoError(t, err)
	assert.Less(t, info.Size(), int64(10<<10))
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#+ (.+)$`)
)

// anchor is GitHub's id for a heading: lower case, punctuation but
// hyphens and underscores dropped, spaces as hyphens.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every relative link in the repository's Markdown files names a file
// that exists and, after a #, a heading in it.
func TestMarkdownLinksResolve(t *testing.T) {
	files, err := filepath.Glob("../*.md")
	require.NoError(t, err)
	docs, err := filepath.Glob("../docs/*.md")
	require.NoError(t, err)
	files = append(files, docs...)
	require.NotEmpty(t, docs)
	for _, f := range files {
		text, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range mdLink.FindAllStringSubmatch(string(text), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(link, "#")
			target := f
			if path != "" {
				target = filepath.Join(filepath.Dir(f), path)
			}
			info, err := os.Stat(target)
			if !assert.NoError(t, err, "%s links to %s", f, link) || frag == "" || info.IsDir() {
				continue
			}
			body, err := os.ReadFile(target)
			require.NoError(t, err)
			var ids []string
			for _, h := range heading.FindAllStringSubmatch(string(body), -1) {
				ids = append(ids, anchor(strings.TrimSpace(h[1])))
			}
			assert.Contains(t, ids, frag, "%s links to %s", f, link)
		}
	}
}
