package gwtest

import (
	"bytes"
	"fmt"
	"io/fs"
	"text/template"

	"github.com/gatecheck/gatecheck/install"
)

// Render executes the text/template fixture file in fsys with data and decodes the result
// into objects. A key missing from data is an error, so a fixture never silently renders
// "<no value>" into a manifest.
func Render(fsys fs.FS, file string, data map[string]any) ([]install.Object, error) {
	src, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("fixture %s: %w", file, err)
	}
	tpl, err := template.New(file).Option("missingkey=error").Funcs(templateFuncs).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("fixture %s: parse template: %w", file, err)
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, data); err != nil {
		return nil, fmt.Errorf("fixture %s: render: %w", file, err)
	}
	objs, err := install.Decode(file, out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("fixture %s: %w", file, err)
	}
	return objs, nil
}

var templateFuncs = template.FuncMap{
	// quote renders a string as a YAML/JSON double-quoted scalar.
	"quote": func(s string) string { return fmt.Sprintf("%q", s) },
}

// Select keeps the objects of the given kind (and, when names are given, those names).
func Select(objs []install.Object, kind string, names ...string) []install.Object {
	var out []install.Object
	for _, o := range objs {
		if o.Obj.GetKind() != kind {
			continue
		}
		if len(names) > 0 && !contains(names, o.Obj.GetName()) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// Without drops the objects of the given kind and names.
func Without(objs []install.Object, kind string, names ...string) []install.Object {
	var out []install.Object
	for _, o := range objs {
		if o.Obj.GetKind() == kind && (len(names) == 0 || contains(names, o.Obj.GetName())) {
			continue
		}
		out = append(out, o)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
