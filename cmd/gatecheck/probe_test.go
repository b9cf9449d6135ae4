package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
)

// splitter answers {"backend": name} with name drawn by weight: a stand-in gateway. (The
// richer splittest package is internal to suites/, out of this package's reach.)
func splitter(t *testing.T, seed uint64, names []string, weights []float64) string {
	return splitterRR(t, seed, names, weights, false)
}

// splitterRR is splitter, or with rr a deterministic smooth weighted round robin (as nginx
// and Envoy do; Traefik's is the same in effect): exactly the weights over every
// sum-of-weights requests.
func splitterRR(t *testing.T, seed uint64, names []string, weights []float64, rr bool) string {
	t.Helper()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed))
	total := 0.0
	for _, w := range weights {
		total += w
	}
	current := make([]float64, len(weights))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if rr {
			mu.Lock()
			best := 0
			for i, wt := range weights {
				current[i] += wt
				if current[i] > current[best] {
					best = i
				}
			}
			current[best] -= total
			mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]string{"backend": names[best]})
			return
		}
		mu.Lock()
		u := rng.Float64() * total
		mu.Unlock()
		name := names[len(names)-1]
		for i, wt := range weights {
			if u < wt {
				name = names[i]
				break
			}
			u -= wt
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"backend": name})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func runCLI(t *testing.T, args ...string) (stdout string, code int, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(t.Context())
	code = 0
	if err != nil {
		code = 2 // what main does with unclassified errors
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), code, err
}

func TestProbeWeightsCLI(t *testing.T) {
	t.Parallel()
	v := []string{"v2", "v3"}
	correct := splitter(t, 1, v, []float64{90, 10})
	skewed := splitter(t, 2, v, []float64{85, 15})
	// The cases, each against its own seeded splitter; the must-fail ones with one
	// request in flight, so that the seeded choices map to the send order and the row is
	// deterministic (each fails with exact probability >= 0.99 at any seed).
	up := splitter(t, 3, v, []float64{87, 13})
	down := splitter(t, 4, v, []float64{93, 7})
	starved := splitter(t, 5, v, []float64{100, 0})
	half := splitter(t, 6, v, []float64{47, 53})
	rr := splitterRR(t, 0, v, []float64{90, 10}, true)
	even := splitter(t, 7, v, []float64{50, 50})
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{"correct split exits 0", []string{"probe", "weights", "--url", correct, "--expect", "v2=90,v3=10"}, 0,
			[]string{"verdict: PASS", "v3", "99.99% CI"}, ""},
		{"skewed split exits 1", []string{"probe", "weights", "--url", skewed, "--expect", "v2=90,v3=10", "--fresh-connections"}, 1,
			[]string{"verdict: FAIL: backend v3: declared 10%", "one connection per request"}, "weights verdict failed: backend v3"},
		{"87/13 served, 90/10 declared, exits 1", []string{"probe", "weights", "--url", up, "--expect", "v2=90,v3=10", "--concurrency", "1"}, 1,
			[]string{"evidence it is too high", "skew up 13% -> 0.9907"}, "weights verdict failed: backend v3"},
		{"93/7 served, 90/10 declared, exits 1", []string{"probe", "weights", "--url", down, "--expect", "v2=90,v3=10", "--concurrency", "1"}, 1,
			[]string{"evidence it is too low", "skew down 7% -> 0.9906"}, "weights verdict failed: backend v3"},
		{"100/0 served, 97/3 declared, exits 1", []string{"probe", "weights", "--url", starved, "--expect", "v2=97,v3=3"}, 1,
			[]string{"backend v3: declared 3%, observed 0.0%", "nothing 0% -> 1"}, "weights verdict failed: backend v3"},
		{"47/53 served, 50/50 declared, exits 1", []string{"probe", "weights", "--url", half, "--expect", "v2=50,v3=50", "--concurrency", "1"}, 1,
			[]string{"backend v2: declared 50%", "skew down 47% -> 0.9904"}, "weights verdict failed: backend v2"},
		{"round robin at exactly 90/10 exits 0", []string{"probe", "weights", "--url", rr, "--expect", "v2=90,v3=10"}, 0,
			[]string{"verdict: PASS: consistent with v2=90%, v3=10% per request", "dependence: none found"}, ""},
		{"too few requests allowed is undecided, exit 2", []string{"probe", "weights", "--url", even, "--expect", "v2=50,v3=50", "--max-requests", "300"}, 2,
			[]string{"only 300 allowed: it can fail, not pass"}, "weights verdict undecided: inconclusive: needs 13,413 requests"},
		{"json output", []string{"probe", "weights", "--url", correct, "--expect", "v2=90,v3=10", "--json"}, 0,
			[]string{`"decision": "pass"`, `"pValue"`, `"interval"`, `"p99Ms"`}, ""},
		{"bad weight names the flag", []string{"probe", "weights", "--url", correct, "--expect", "v2=abc"}, 2,
			nil, `flag --expect: backend v2 weight "abc": not a number`},
		{"missing url", []string{"probe", "weights", "--expect", "v2=90,v3=10"}, 2,
			nil, "flag --url: required"},
		{"bad tolerance", []string{"probe", "weights", "--url", correct, "--expect", "a=1", "--tolerance", "0"}, 2,
			nil, "flag --tolerance: got 0; want a value in (0, 50)"},
		{"bad header", []string{"probe", "weights", "--url", correct, "--expect", "a=1", "--header", "nope"}, 2,
			nil, `flag --header "nope": want name=value`},
		{"undeclared backend exits 1", []string{"probe", "weights", "--url", correct, "--expect", "v2=100"}, 1,
			[]string{"(undeclared)"}, `backend "v3" is not declared`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, code, err := runCLI(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code: got %d; want %d (err: %v)\n%s", code, tc.wantCode, err, out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output: missing %q in\n%s", w, out)
				}
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error: got %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// mirrorSetup starts a real echo backend with records (the mirror) and a stand-in gateway
// that answers every request itself and copies it to the mirror when copyIt says so.
func mirrorSetup(t *testing.T, copyIt func(n int) bool) (gw, admin string) {
	t.Helper()
	store := records.NewStore(identity.Identity{Backend: "mirror"}, 0)
	srv, err := echo.NewServer(echo.Options{Identity: identity.Identity{Backend: "mirror"}, Records: store})
	if err != nil {
		t.Fatal(err)
	}
	mirror := httptest.NewServer(srv.Handler())
	adminSrv := httptest.NewServer(store.Handler())
	var mu sync.Mutex
	n := 0
	gwSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		c := copyIt(n)
		mu.Unlock()
		if c {
			req, _ := http.NewRequest(http.MethodGet, mirror.URL+r.URL.RequestURI(), nil)
			req.Header = r.Header.Clone()
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		}
		_, _ = w.Write([]byte(`{"backend":"primary"}`))
	}))
	t.Cleanup(func() { gwSrv.Close(); mirror.Close(); adminSrv.Close() })
	return gwSrv.URL, adminSrv.URL
}

func TestProbeMirrorCLI(t *testing.T) {
	t.Parallel()
	full, fullAdmin := mirrorSetup(t, func(int) bool { return true })
	lossy, lossyAdmin := mirrorSetup(t, func(n int) bool { return n%100 != 0 })
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"full mirror exits 0", []string{"probe", "mirror", "--url", full, "--mirror-admin", fullAdmin, "--requests", "300"}, 0,
			"verdict: PASS: mirror saw 300 of 300 requests", ""},
		{"lossy mirror exits 1", []string{"probe", "mirror", "--url", lossy, "--mirror-admin", lossyAdmin, "--requests", "300", "--settle", "1s"}, 1,
			"verdict: FAIL: mirror saw 297 of 300 requests", "3 of 300 requests never reached the mirror"},
		{"bad fraction names the flag", []string{"probe", "mirror", "--url", full, "--mirror-admin", fullAdmin, "--fraction", "150%"}, 2,
			"", `flag --fraction: "150%": want a share between 0 and 1`},
		{"missing admin", []string{"probe", "mirror", "--url", full}, 2, "", "flag --mirror-admin: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, code, err := runCLI(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code: got %d; want %d (err: %v)\n%s", code, tc.wantCode, err, out)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("output: missing %q in\n%s", tc.wantOut, out)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error: got %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestProbeWeightsTLS: an https target with a self-signed certificate needs
// --insecure-skip-verify; without it the probe cannot run (exit 2).
func TestProbeWeightsTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"backend":"only"}`))
	}))
	defer srv.Close()
	args := []string{"probe", "weights", "--url", srv.URL, "--expect", "only=1,other=0", "--max-requests", "200", "--converge-timeout", "5s"} // 500ms failed once under load (TLS handshakes)
	if _, code, err := runCLI(t, args...); code != 2 || err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without --insecure-skip-verify: got code %d, err %v; want 2 and a certificate error", code, err)
	}
	out, code, err := runCLI(t, append(args, "--insecure-skip-verify")...)
	if code != 0 || !strings.Contains(out, "verdict: PASS: no request from a zero-weight or undeclared backend in n=200") {
		t.Errorf("with --insecure-skip-verify: got code %d, err %v; want 0 and a pass\n%s", code, err, out)
	}
}

// probe tcp through the CLI: bad flags exit 2 naming the flag; a target that refuses every
// connection is a failed verdict (exit 1) that says so.
func TestProbeTCPCLI(t *testing.T) {
	t.Parallel()
	_, code, err := runCLI(t, "probe", "tcp", "--expect", "t1=abc")
	if code != 2 || err == nil || !strings.Contains(err.Error(), "flag --addr: required") || !strings.Contains(err.Error(), "flag --expect") {
		t.Fatalf("bad flags: exit %d, %v; want 2 naming --addr and --expect", code, err)
	}
	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	addr := ln.Addr().String()
	ln.Close()
	out, code, err := runCLI(t, "probe", "tcp", "--addr", addr, "--expect", "t1=100", "--timeout", "1s")
	if code != 1 || !strings.Contains(out, "connection failed") {
		t.Fatalf("refused target: exit %d, %v, output:\n%s\nwant exit 1 and a failed connection named", code, err, out)
	}
}
