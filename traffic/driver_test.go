package traffic

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/traffic/splittest"
)

func TestJSONIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr string
	}{
		{"backend field", `{"backend":"v2","pod":"p-1"}`, "v2", ""},
		{"falls back to pod", `{"backend":"","pod":"p-1"}`, "p-1", ""},
		{"pod only", `{"pod":"p-1","namespace":"ns"}`, "p-1", ""},
		{"neither", `{"namespace":"ns"}`, "", "response body: none of the fields backend, pod holds a non-empty string"},
		{"not json", `hello`, "", "response body: not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := JSONIdentity()(nil, []byte(tc.body))
			if got != tc.want {
				t.Errorf("identity: got %q; want %q", got, tc.want)
			}
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.HasPrefix(err.Error(), tc.wantErr)) {
				t.Errorf("error: got %v; want %q", err, tc.wantErr)
			}
		})
	}
}

// TestConnections checks keep-alive reuse against one connection per request, over
// HTTP/1.1 and h2c.
func TestConnections(t *testing.T) {
	t.Parallel()
	const n = 120
	tests := []struct {
		name      string
		h2c       bool
		fresh     bool
		wantProto string
		maxConns  int
		minConns  int
	}{
		{"http1 keep-alive", false, false, "HTTP/1.1", 8, 1},
		{"http1 fresh", false, true, "HTTP/1.1", n, n},
		{"h2c keep-alive", true, false, "HTTP/2.0", 8, 1},
		{"h2c fresh", true, true, "HTTP/2.0", n, n},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := splittest.New([]splittest.Backend{{Name: "a", Weight: 1}}, splittest.Options{H2C: tc.h2c})
			defer sp.Close()
			d := &Driver{URL: sp.URL + "/x", Concurrency: 4, H2C: tc.h2c, FreshConnections: tc.fresh}
			sum, err := d.Run(t.Context(), Limit{Requests: n}, nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if diff := cmp.Diff(map[string]int{tc.wantProto: n}, sum.Protocols); diff != "" {
				t.Errorf("protocols (-want +got):\n%s", diff)
			}
			if c := sp.Peers(); c < tc.minConns || c > tc.maxConns {
				t.Errorf("connections carrying requests: got %d; want %d..%d", c, tc.minConns, tc.maxConns)
			}
			if sum.Sent != n || sum.Completed != n || sum.Backends["a"] != n {
				t.Errorf("sent %d completed %d backend a %d; want %d each", sum.Sent, sum.Completed, sum.Backends["a"], n)
			}
			if sum.Latency.Count != n || sum.Latency.P99 <= 0 || sum.Latency.Max < sum.Latency.P50 {
				t.Errorf("latency: got %+v; want %d samples with p99 > 0 and max >= p50", sum.Latency, n)
			}
		})
	}
}

// TestRequestIDsHostAndHeaders checks every request carries a unique id, the Host override
// and the extra headers.
func TestRequestIDsHostAndHeaders(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ids := map[string]int{}
	var hosts, versions []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids[r.Header.Get(RequestIDHeader)]++
		hosts = append(hosts, r.Host)
		versions = append(versions, r.Header.Get("x-api-version"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"backend":"a"}`))
	}))
	defer srv.Close()
	d := &Driver{URL: srv.URL, Host: "gw.example", Header: http.Header{"X-Api-Version": {"v2"}}, Concurrency: 3}
	if _, err := d.Run(t.Context(), Limit{Requests: 50}, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	// A second run and a single request on the same Driver must not reuse ids.
	if _, err := d.Run(t.Context(), Limit{Requests: 50}, nil); err != nil {
		t.Fatalf("second run: %v", err)
	}
	d.Do(t.Context(), 1)
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 101 {
		t.Errorf("distinct request ids: got %d; want 101", len(ids))
	}
	for id, c := range ids {
		if id == "" || c != 1 {
			t.Errorf("request id %q seen %d times; want a non-empty id seen once", id, c)
		}
	}
	for i := range hosts {
		if hosts[i] != "gw.example" || versions[i] != "v2" {
			t.Fatalf("request %d: host %q x-api-version %q; want gw.example, v2", i, hosts[i], versions[i])
		}
	}
}

func TestFailuresAreCounted(t *testing.T) {
	t.Parallel()
	sp := splittest.New([]splittest.Backend{{Name: "a", Weight: 1}}, splittest.Options{
		Status: func(n int64) int {
			if n%10 == 0 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		},
	})
	defer sp.Close()
	d := &Driver{URL: sp.URL, Concurrency: 1}
	sum, err := d.Run(t.Context(), Limit{Requests: 100}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if diff := cmp.Diff(map[int]int{200: 90, 503: 10}, sum.Status); diff != "" {
		t.Errorf("status counts (-want +got):\n%s", diff)
	}
	if got := sum.FailureText(); got != "503: 10" {
		t.Errorf("failure text: got %q; want %q", got, "503: 10")
	}

	// A closed port: every request is a transport error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	d = &Driver{URL: "http://" + addr, Concurrency: 2}
	sum, err = d.Run(t.Context(), Limit{Requests: 10}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if sum.TransportErrors != 10 || sum.Failures() != 10 || len(sum.ErrorSamples) == 0 {
		t.Errorf("transport errors %d failures %d samples %v; want 10, 10, some", sum.TransportErrors, sum.Failures(), sum.ErrorSamples)
	}
}

func TestRateAndStop(t *testing.T) {
	t.Parallel()
	sp := splittest.New([]splittest.Backend{{Name: "a", Weight: 1}}, splittest.Options{})
	defer sp.Close()
	d := &Driver{URL: sp.URL, Concurrency: 4, Rate: 100}
	start := time.Now()
	sum, err := d.Run(t.Context(), Limit{Requests: 40}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// 40 requests at 100/s (burst 1) take at least 390 ms.
	if el := time.Since(start); el < 380*time.Millisecond {
		t.Errorf("40 requests at 100/s took %s; want >= 390ms", el)
	}
	if sum.Completed != 40 {
		t.Errorf("completed: got %d; want 40", sum.Completed)
	}

	d = &Driver{URL: sp.URL, Concurrency: 4}
	seen := 0
	sum, err = d.Run(t.Context(), Limit{}, func(Result) bool { seen++; return seen == 25 })
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// After stop, at most one request per worker is in flight and one result per worker
	// waits in the buffer.
	if sum.Observed != 25 || sum.Completed > 25+2*4 {
		t.Errorf("observed %d completed %d; want 25 observed and at most 8 more", sum.Observed, sum.Completed)
	}

	d = &Driver{URL: sp.URL, Concurrency: 2, Rate: 50}
	start = time.Now()
	if _, err := d.Run(t.Context(), Limit{Duration: 200 * time.Millisecond}, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("a 200ms run took %s", el)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.Run(ctx, Limit{}, nil); err == nil {
		t.Errorf("run with a cancelled context: got nil error; want context.Canceled")
	}
}

func TestBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "gw.example/path", "ftp://x/", "https://x/"} {
		d := &Driver{URL: u, H2C: true}
		if _, err := d.Run(t.Context(), Limit{Requests: 1}, nil); err == nil || !strings.Contains(err.Error(), "driver url") {
			t.Errorf("url %q: got %v; want an error naming the driver url", u, err)
		}
	}
}

func TestConverge(t *testing.T) {
	t.Parallel()
	sp := splittest.New([]splittest.Backend{{Name: "a", Weight: 1}}, splittest.Options{
		Status: func(n int64) int {
			if n <= 4 || n == 6 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		},
	})
	defer sp.Close()
	d := &Driver{URL: sp.URL}
	if _, err := d.Converge(t.Context(), 3, 10*time.Second, nil); err != nil {
		t.Fatalf("converge: %v", err)
	}
	// 4 failures, 1 success, 1 failure, then 3 successes.
	if got := sp.Conns.Load(); got < 1 {
		t.Errorf("connections: got %d; want >= 1", got)
	}

	never := splittest.New([]splittest.Backend{{Name: "a", Weight: 1}}, splittest.Options{Status: func(int64) int { return 503 }})
	defer never.Close()
	d = &Driver{URL: never.URL}
	_, err := d.Converge(t.Context(), 3, 400*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "no 3 consecutive expected responses within 400ms (last: status 503)") {
		t.Errorf("converge error: got %v; want one naming 3 consecutive responses and the last status", err)
	}
}
