package mailout

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"
)

//go:embed templates/*.txt
var builtin embed.FS

// Templates renders the bodies of the mail the gateway sends. Each template
// is a text/template file named <name>.txt; a file of the same name in the
// override directory replaces the built-in one. An override that fails when
// it runs (a misspelt field, a bad call) never stops mail: the failure is
// logged and the built-in text is used instead.
type Templates struct {
	// Log receives override failures; nil logs to slog.Default().
	Log *slog.Logger

	builtin  map[string]*template.Template
	override map[string]*template.Template
	files    map[string]string // override name → file, for the log
	// replies are the saved replies, replies/NAME.txt in the override
	// directory, by lower-case NAME.
	replies map[string]*template.Template
	// plain caches printsPlain's answers: the templates never change
	// once loaded.
	plain sync.Map // name, 0x00, field → bool
	// fields caches reads's answers, for the same reason.
	fields sync.Map // name → readFields
}

// LoadTemplates reads the built-in templates and, when dir is not "", the
// overrides in dir. A template that does not parse, and an override file
// whose name is no built-in template's (it would never be used), is an
// error at start-up, not at the moment mail should go out.
func LoadTemplates(dir string) (*Templates, error) {
	ts := &Templates{builtin: map[string]*template.Template{}, override: map[string]*template.Template{}, files: map[string]string{}}
	entries, err := fs.ReadDir(builtin, "templates")
	if err != nil {
		return nil, fmt.Errorf("read built-in templates: %w", err)
	}
	for _, e := range entries {
		b, err := builtin.ReadFile("templates/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read built-in template %s: %w", e.Name(), err)
		}
		t, err := parseTemplate(e.Name(), b)
		if err != nil {
			return nil, err
		}
		ts.builtin[t.Name()] = t
	}
	if dir == "" {
		return ts, nil
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("template directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("template directory %s is not a directory", dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, fmt.Errorf("list templates in %s: %w", dir, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		if ts.builtin[name] == nil {
			return nil, fmt.Errorf("template %s: no built-in template is called %q, so the file would never be used (valid names: %s)",
				f, name, strings.Join(ts.Names(), ", "))
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read template: %w", err)
		}
		t, err := parseTemplate(f, b)
		if err != nil {
			return nil, err
		}
		ts.override[name], ts.files[name] = t, f
	}
	if err := ts.loadReplies(filepath.Join(dir, "replies")); err != nil {
		return nil, err
	}
	return ts, nil
}

// loadReplies reads the saved replies in dir (NAME.txt each), when dir exists.
func (ts *Templates) loadReplies(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return fmt.Errorf("list saved replies in %s: %w", dir, err)
	}
	for _, f := range files {
		name := strings.ToLower(strings.TrimSuffix(filepath.Base(f), ".txt"))
		if !validReplyName(name) {
			return fmt.Errorf("saved reply %s: a name has only letters, digits, '-' and '_', so that #reply %s can be typed", f, name)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read saved reply: %w", err)
		}
		t, err := parseTemplate(f, b)
		if err != nil {
			return err
		}
		if ts.replies == nil {
			ts.replies = map[string]*template.Template{}
		}
		ts.replies[name] = t
	}
	return nil
}

func validReplyName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ReplyNames lists the saved replies' names, sorted.
func (ts *Templates) ReplyNames() []string {
	out := make([]string, 0, len(ts.replies))
	for n := range ts.replies {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ErrNoReply is returned by Reply for a name no saved reply has.
var ErrNoReply = errors.New("no saved reply")

// Reply renders the saved reply name (any case) with data.
func (ts *Templates) Reply(name string, data any) (string, error) {
	t := ts.replies[strings.ToLower(name)]
	if t == nil {
		return "", fmt.Errorf("%w %q", ErrNoReply, name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("saved reply %s: %w", name, err)
	}
	return b.String(), nil
}

// parseTemplate parses one template file; a missing key is an error, so
// that a misspelt field shows instead of "<no value>" in a customer's mail.
func parseTemplate(file string, b []byte) (*template.Template, error) {
	name := strings.TrimSuffix(filepath.Base(file), ".txt")
	t, err := template.New(name).Option("missingkey=error").Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", file, err)
	}
	return t, nil
}

// Names lists the built-in template names (the override file names without
// ".txt"), sorted.
func (ts *Templates) Names() []string {
	out := make([]string, 0, len(ts.builtin))
	for n := range ts.builtin {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Render executes template name with data: the override when there is one
// and it runs, else the built-in template.
func (ts *Templates) Render(name string, data any) (string, error) {
	if t := ts.override[name]; t != nil {
		var b bytes.Buffer
		err := t.Execute(&b, data)
		if err == nil {
			return b.String(), nil
		}
		ts.log().Error("template override failed; the built-in text is sent instead", "template", name, "file", ts.files[name], "err", err)
	}
	t, ok := ts.builtin[name]
	if !ok {
		return "", fmt.Errorf("no template %q", name)
	}
	b := renderBuffers.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= maxPooledRender {
			b.Reset()
			renderBuffers.Put(b)
		}
	}()
	if err := t.Execute(b, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return b.String(), nil
}

// renderBuffers keep the buffers templates render into (a mail's text
// grows a new one from 64 bytes, doubling); one grown past
// maxPooledRender by a long text is left to the collector.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledRender = 64 << 10

func (ts *Templates) log() *slog.Logger {
	if ts.Log != nil {
		return ts.Log
	}
	return slog.Default()
}
