package mailout

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"
)

//go:embed templates/*.txt
var builtin embed.FS

// Templates renders the bodies of the mail the gateway sends. Each template
// is a text/template file named <name>.txt; a file of the same name in the
// override directory replaces the built-in one.
type Templates struct {
	t map[string]*template.Template
}

// LoadTemplates reads the built-in templates and, when dir is not "", the
// overrides in dir. A template that does not parse is an error at start-up,
// not at the moment mail should go out.
func LoadTemplates(dir string) (*Templates, error) {
	ts := &Templates{t: map[string]*template.Template{}}
	entries, err := fs.ReadDir(builtin, "templates")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := builtin.ReadFile("templates/" + e.Name())
		if err != nil {
			return nil, err
		}
		if err := ts.add(e.Name(), b); err != nil {
			return nil, err
		}
	}
	if dir == "" {
		return ts, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read template: %w", err)
		}
		if err := ts.add(filepath.Base(f), b); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

func (ts *Templates) add(file string, b []byte) error {
	name := file[:len(file)-len(filepath.Ext(file))]
	t, err := template.New(name).Option("missingkey=error").Parse(string(b))
	if err != nil {
		return fmt.Errorf("template %s: %w", file, err)
	}
	ts.t[name] = t
	return nil
}

// Render executes template name with data.
func (ts *Templates) Render(name string, data any) (string, error) {
	t, ok := ts.t[name]
	if !ok {
		return "", fmt.Errorf("no template %q", name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return b.String(), nil
}
