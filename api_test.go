package memguard

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No exported name's signature mentions an unexported type, in this
// package or in securememory: what users see in the documentation they
// can name. Option and CofferOption are interfaces with an unexported
// method for that reason.
func TestExportedSignaturesNameExportedTypes(t *testing.T) {
	for _, dir := range []string{".", "securememory"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		fset := token.NewFileSet()
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			for _, where := range unexportedInSignatures(f) {
				assert.Fail(t, "an exported signature names an unexported type", "%s: %s", fset.Position(where.pos), where.what)
			}
		}
	}
}

type apiLeak struct {
	pos  token.Pos
	what string
}

// unexportedInSignatures lists the unexported type names in f's exported
// functions, methods of exported types, and exported types.
func unexportedInSignatures(f *ast.File) []apiLeak {
	var leaks []apiLeak
	var typeNames func(what string, e ast.Expr)
	fields := func(what string, list *ast.FieldList, exportedOnly bool) {
		if list == nil {
			return
		}
		for _, field := range list.List {
			if exportedOnly && !exportedField(field) {
				continue
			}
			typeNames(what, field.Type)
		}
	}
	typeNames = func(what string, e ast.Expr) {
		ast.Inspect(e, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr: // another package's name
				return false
			case *ast.FuncType:
				fields(what, n.Params, false)
				fields(what, n.Results, false)
				return false
			case *ast.StructType:
				fields(what, n.Fields, true)
				return false
			case *ast.InterfaceType:
				fields(what, n.Methods, true)
				return false
			case *ast.Ident:
				if !n.IsExported() && types.Universe.Lookup(n.Name) == nil {
					leaks = append(leaks, apiLeak{n.Pos(), what + " names " + n.Name})
				}
			}
			return true
		})
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv != nil {
				recv := d.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if id, ok := recv.(*ast.Ident); ok && !id.IsExported() {
					continue // a method of an unexported type
				}
			}
			typeNames(d.Name.Name, d.Type)
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				if ts, ok := spec.(*ast.TypeSpec); ok && ts.Name.IsExported() {
					typeNames(ts.Name.Name, ts.Type)
				}
			}
		}
	}
	return leaks
}

// exportedField reports whether a struct field or interface method is
// exported; an embedded one is named by its type.
func exportedField(field *ast.Field) bool {
	if len(field.Names) > 0 {
		return field.Names[0].IsExported()
	}
	typ := field.Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	id, ok := typ.(*ast.Ident)
	return !ok || id.IsExported()
}

// The check finds what it is for.
func TestUnexportedInSignaturesFinds(t *testing.T) {
	src := `package p
type Option func(*options)
type Fine interface{ apply(*options); Do(int) error }
type S struct{ Public inner; private inner; X struct{ Y hidden }; *embedded; Embedded }
func F(a int, b *state) (err error) { return nil }
func (x *hiddenType) Method(y *state) {}
func G(f func(c config) error, m map[string]item) []thing { return nil }
func H(x fmt.Stringer) {}
`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, parser.SkipObjectResolution)
	require.NoError(t, err)
	var got []string
	for _, l := range unexportedInSignatures(f) {
		got = append(got, l.what)
	}
	assert.Equal(t, []string{
		"Option names options",
		"S names inner", "S names hidden",
		"F names state",
		"G names config", "G names item", "G names thing",
	}, got)
}
