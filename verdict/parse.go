package verdict

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBackends reads "v2=90,v3=10" (weights relative, as in backendRefs) into Backends.
func ParseBackends(s string) ([]Backend, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("got empty; want name=weight[,name=weight...], e.g. v2=90,v3=10")
	}
	var out []Backend
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want name=weight, e.g. v2=90", part)
		}
		wf, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if err != nil {
			return nil, fmt.Errorf("backend %s weight %q: not a number", name, w)
		}
		out = append(out, Backend{Name: name, Weight: wf})
	}
	return out, nil
}
