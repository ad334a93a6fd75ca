package desk

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"ticketgate/rules"
)

// TestEventTypesAndWhereTheyAreMade reads the source of every package that
// writes to a ticket's activity log and lists each event type with the
// places that produce it (go test -v shows the table). It fails when a
// type in rules.EventTypes is produced nowhere, or when an event's type is
// written as a bare string instead of a rules constant.
func TestEventTypesAndWhereTheyAreMade(t *testing.T) {
	known := map[string]rules.EventType{}
	for _, e := range rules.EventTypes {
		name := constName(t, e)
		known[name] = e
	}
	where := map[rules.EventType][]string{}
	fset := token.NewFileSet()
	for _, dir := range []string{".", "../mailout", "../rules", "../cmd/ticketgate"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, "rules/event.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if x, ok := n.X.(*ast.Ident); ok && x.Name == "rules" {
						if e, ok := known[n.Sel.Name]; ok {
							where[e] = append(where[e], fmt.Sprintf("%s:%d", filepath.ToSlash(f), fset.Position(n.Pos()).Line))
						}
					}
				case *ast.Ident:
					if e, ok := known[n.Name]; ok && filepath.Base(dir) == "rules" {
						where[e] = append(where[e], fmt.Sprintf("%s:%d", filepath.ToSlash(f), fset.Position(n.Pos()).Line))
					}
				case *ast.KeyValueExpr:
					if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Type" {
						if lit, ok := n.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							t.Errorf("%s: event type written as the string %s; use a rules.Event constant", fset.Position(lit.Pos()), lit.Value)
						}
					}
				}
				return true
			})
		}
	}
	var lines []string
	for _, e := range rules.EventTypes {
		places := slices.Compact(where[e])
		if len(places) == 0 {
			t.Errorf("event type %q (%s) is produced nowhere", e, constName(t, e))
		}
		lines = append(lines, fmt.Sprintf("%-22s %s", e, strings.Join(places, ", ")))
	}
	sort.Strings(lines)
	t.Logf("event types and where they are produced:\n%s", strings.Join(lines, "\n"))
}

// constName is the Go name of event type e (EventSLABreach for
// "sla_breach"), read from rules/event.go.
func constName(t *testing.T, e rules.EventType) string {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "../rules/event.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := ""
	ast.Inspect(file, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Values) != 1 {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Value == fmt.Sprintf("%q", string(e)) {
			name = vs.Names[0].Name
		}
		return true
	})
	if name == "" {
		t.Fatalf("event type %q has no constant in rules/event.go", e)
	}
	return name
}
