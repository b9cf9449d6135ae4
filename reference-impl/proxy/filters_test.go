package proxy

import (
	"math"
	"net/http"
	"testing"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func TestModifyPath(t *testing.T) {
	t.Parallel()
	full := func(v string) *ir.PathModifier { return &ir.PathModifier{Type: ir.ReplaceFullPath, ReplaceFullPath: v} }
	pre := func(v string) *ir.PathModifier {
		return &ir.PathModifier{Type: ir.ReplacePrefixMatch, ReplacePrefixMatch: v}
	}
	tests := []struct {
		name, path, prefix string
		mod                *ir.PathModifier
		want               string
	}{
		// The rewrite-path and redirect-path conformance cases.
		{"prefix to prefix", "/prefix/one/two", "/prefix/one", pre("/one"), "/one/two"},
		{"strip prefix", "/strip-prefix/three", "/strip-prefix", pre("/"), "/three"},
		{"strip whole path", "/strip-prefix", "/strip-prefix", pre("/"), "/"},
		{"full path", "/full/one/two", "/full/one", full("/one"), "/one"},
		{"prefix with header mods", "/prefix/rewrite-path-and-modify-headers/one", "/prefix/rewrite-path-and-modify-headers", pre("/prefix"), "/prefix/one"},
		{"redirect prefix", "/original-prefix/lemon", "/original-prefix", pre("/replacement-prefix"), "/replacement-prefix/lemon"},
		{"redirect prefix only", "/path-and-host", "/path-and-host", pre("/replacement-prefix"), "/replacement-prefix"},
		{"replacement trailing slash", "/a/b", "/a", pre("/x/"), "/x/b"},
		{"prefix with trailing slash in match", "/a/b", "/a", pre("/x"), "/x/b"},
		{"root prefix", "/a/b", "", pre("/x"), "/x/a/b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := modifyPath(tc.path, tc.mod, tc.prefix, true); got != tc.want {
				t.Errorf("modifyPath(%q, prefix %q): got %q; want %q", tc.path, tc.prefix, got, tc.want)
			}
		})
	}
}

func TestRedirectLocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		rd           ir.Redirect
		scheme, host string
		port         int32
		want         string
		wantCode     int
	}{
		// The redirect-port-and-scheme conformance cases, HTTP listener on 80 and 8080 and
		// HTTPS listener on 443.
		{"http80 scheme nil port nil", ir.Redirect{}, "http", "example.org", 80, "http://example.org/p", 302},
		{"http80 port 80", ir.Redirect{Port: ptr[int32](80)}, "http", "example.org", 80, "http://example.org/p", 302},
		{"http80 port 8080", ir.Redirect{Port: ptr[int32](8080)}, "http", "example.org", 80, "http://example.org:8080/p", 302},
		{"http80 https nil port", ir.Redirect{Scheme: ptr("https")}, "http", "example.org", 80, "https://example.org/p", 302},
		{"http80 https 443", ir.Redirect{Scheme: ptr("https"), Port: ptr[int32](443)}, "http", "example.org", 80, "https://example.org/p", 302},
		{"http80 https 8443", ir.Redirect{Scheme: ptr("https"), Port: ptr[int32](8443)}, "http", "example.org", 80, "https://example.org:8443/p", 302},
		{"http8080 nil nil keeps listener port", ir.Redirect{}, "http", "example.org", 8080, "http://example.org:8080/p", 302},
		{"http8080 port 80", ir.Redirect{Port: ptr[int32](80)}, "http", "example.org", 8080, "http://example.org/p", 302},
		{"http8080 https nil port uses 443", ir.Redirect{Scheme: ptr("https")}, "http", "example.org", 8080, "https://example.org/p", 302},
		{"https443 nil nil", ir.Redirect{}, "https", "example.org", 443, "https://example.org/p", 302},
		{"https443 port 8443", ir.Redirect{Port: ptr[int32](8443)}, "https", "example.org", 443, "https://example.org:8443/p", 302},
		{"https443 http nil port uses 80", ir.Redirect{Scheme: ptr("http")}, "https", "example.org", 443, "http://example.org/p", 302},
		{"https443 http 8080", ir.Redirect{Scheme: ptr("http"), Port: ptr[int32](8080)}, "https", "example.org", 443, "http://example.org:8080/p", 302},
		{"hostname and 301", ir.Redirect{Hostname: ptr("example.net"), StatusCode: 301}, "http", "example.org", 80, "http://example.net/p", 301},
		{"path full", ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, ReplaceFullPath: "/full-path-replacement"}}, "http", "example.org", 80, "http://example.org/full-path-replacement", 302},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := redirectLocation(&tc.rd, tc.scheme, tc.host, tc.port, "/p", "", "/p", true)
			if got != tc.want {
				t.Errorf("Location: got %q; want %q", got, tc.want)
			}
			if code := redirectStatus(&tc.rd); code != tc.wantCode {
				t.Errorf("status: got %d; want %d", code, tc.wantCode)
			}
		})
	}
	if got := redirectLocation(&ir.Redirect{}, "http", "h.example", 80, "/a b", "x=1&y=2", "", true); got != "http://h.example/a%20b?x=1&y=2" {
		t.Errorf("query kept: got %q; want %q", got, "http://h.example/a%20b?x=1&y=2")
	}
}

func TestHeaderModifier(t *testing.T) {
	t.Parallel()
	h := http.Header{"X-Header-Set": {"old"}, "X-Header-Add": {"a"}, "X-Header-Remove": {"gone"}, "Keep": {"k"}}
	applyHeaderModifier(h, &ir.HeaderModifier{
		Set:    []ir.Header{{Name: "X-Header-Set", Value: "set-overwrites-values"}, {Name: "x-new", Value: "n"}},
		Add:    []ir.Header{{Name: "X-Header-Add", Value: "header-val-1"}, {Name: "x-header-add-append", Value: "v2"}},
		Remove: []string{"x-header-remove"},
	})
	want := http.Header{
		"X-Header-Set":        {"set-overwrites-values"},
		"X-New":               {"n"},
		"X-Header-Add":        {"a", "header-val-1"},
		"X-Header-Add-Append": {"v2"},
		"Keep":                {"k"},
	}
	if d := cmp.Diff(want, h); d != "" {
		t.Errorf("headers (-want +got):\n%s", d)
	}
}

// TestWeightedChoice checks the weighted random choice statistically. With n = 200,000 picks
// per case each share is binomial; the test fails when any share is more than 6 standard
// deviations from its expected value, which a correct implementation does with probability
// below 2e-9 per share (about 1e-8 for the whole test): a failure means a real bias.
func TestWeightedChoice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []int32
	}{
		{"70/30", []int32{70, 30}},
		{"90/10", []int32{90, 10}},
		{"1/1/1", []int32{1, 1, 1}},
		{"1/0/3 zero weight never chosen", []int32{1, 0, 3}},
		{"999/1", []int32{999, 1}},
	}
	const n = 200_000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var bs []ir.Backend
			total := 0.0
			for i, w := range tc.weights {
				bs = append(bs, ir.Backend{Name: string(rune('a' + i)), Weight: w})
				total += float64(w)
			}
			set, err := compileBackends(bs, false)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for range n {
				counts[set.pick().name]++
			}
			for i, w := range tc.weights {
				name := string(rune('a' + i))
				p := float64(w) / total
				sd := math.Sqrt(n * p * (1 - p))
				if diff := math.Abs(float64(counts[name]) - n*p); diff > 6*sd || (w == 0 && counts[name] != 0) {
					t.Errorf("backend %s weight %d: got %d of %d picks; want %.0f +- %.0f (6 sd)", name, w, counts[name], n, n*p, 6*sd)
				}
			}
		})
	}
	t.Run("all zero picks nothing", func(t *testing.T) {
		t.Parallel()
		set, _ := compileBackends([]ir.Backend{{Name: "a"}, {Name: "b"}}, false)
		if b := set.pick(); b != nil {
			t.Errorf("pick with all weights zero: got %q; want nil (500)", b.name)
		}
	})
}

func TestRoundRobin(t *testing.T) {
	t.Parallel()
	b, _ := compileBackend(ir.Backend{Name: "b", Weight: 1, Endpoints: []ir.Endpoint{{Address: "10.0.0.1", Port: 80}, {Address: "10.0.0.2", Port: 80}, {Address: "fd00::3", Port: 80}}}, false)
	var got []string
	for range 6 {
		got = append(got, b.next())
	}
	want := []string{"10.0.0.1:80", "10.0.0.2:80", "[fd00::3]:80", "10.0.0.1:80", "10.0.0.2:80", "[fd00::3]:80"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("endpoints (-want +got):\n%s", d)
	}
}
