package gwtest

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
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
	tpl, err := template.New("partials").Option("missingkey=error").Funcs(templateFuncs).ParseFS(partials, "partials/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("fixture %s: parse partials: %w", file, err)
	}
	tpl, err = tpl.New(file).Parse(string(src))
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

//go:embed partials/*.tmpl
var partials embed.FS

var templateFuncs = template.FuncMap{
	// quote renders a string as a YAML/JSON double-quoted scalar.
	"quote":   func(s string) string { return fmt.Sprintf("%q", s) },
	"backend": backend,
}

// backend builds the data of the "echo" partial: the fixture's data plus the backend's
// settings, defaults first, then key=value overrides (keys are the partial's field names,
// lower-case first letter allowed: "mode=grpc", "port2=8080").
func backend(root map[string]any, name string, kv ...string) (map[string]any, error) {
	d := make(map[string]any, len(root)+10)
	for k, v := range root {
		d[k] = v
	}
	for k, v := range map[string]any{
		"Name": name, "Backend": name, "Mode": "http", "Port": "80", "Port2": "", "AppProtocol": "",
		"Replicas": "1", "Selector": name, "TargetPort": "serve", "NoDeployment": false, "Args": []string{},
	} {
		d[k] = v
	}
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("backend %s option %q: want key=value", name, s)
		}
		k = strings.ToUpper(k[:1]) + k[1:]
		switch k {
		case "NoDeployment":
			d[k] = v == "true"
		case "Args":
			d[k] = strings.Fields(v)
		case "Backend", "Mode", "Port", "Port2", "AppProtocol", "Replicas", "Selector", "TargetPort":
			d[k] = v
		default:
			return nil, fmt.Errorf("backend %s option %q: unknown key %q (want mode, backend, port, port2, appProtocol, replicas, selector, targetPort, args or noDeployment)", name, s, k)
		}
	}
	if m := d["Mode"]; m != "http" && m != "grpc" && m != "tcp" {
		return nil, fmt.Errorf("backend %s mode %q: want http, grpc or tcp", name, m)
	}
	return d, nil
}

// Select keeps the objects of the given kind (and, when names are given, those names).
func Select(objs []install.Object, kind string, names ...string) []install.Object {
	var out []install.Object
	for _, o := range objs {
		if o.Obj.GetKind() != kind {
			continue
		}
		if len(names) > 0 && !slices.Contains(names, o.Obj.GetName()) {
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
		if o.Obj.GetKind() == kind && (len(names) == 0 || slices.Contains(names, o.Obj.GetName())) {
			continue
		}
		out = append(out, o)
	}
	return out
}
