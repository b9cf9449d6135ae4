package traffic

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/traffic/splittest"
	"github.com/gatecheck/gatecheck/verdict"
)

// TestSampleEndToEnd drives a loopback splitter through the driver into the sequential test:
// a correct 90/10 passes and an 85/15 one fails, on keep-alive and fresh connections.
func TestSampleEndToEnd(t *testing.T) {
	t.Parallel()
	declared := []verdict.Backend{{Name: "v2", Weight: 90}, {Name: "v3", Weight: 10}}
	tests := []struct {
		name   string
		served []splittest.Backend
		fresh  bool
		want   verdict.Decision
	}{
		{"correct 90/10 keep-alive", []splittest.Backend{{Name: "v2", Weight: 90}, {Name: "v3", Weight: 10}}, false, verdict.Pass},
		{"correct 90/10 fresh connections", []splittest.Backend{{Name: "v2", Weight: 90}, {Name: "v3", Weight: 10}}, true, verdict.Pass},
		{"skewed 85/15", []splittest.Backend{{Name: "v2", Weight: 85}, {Name: "v3", Weight: 15}}, false, verdict.Fail},
		{"leak to a zero-weight backend", []splittest.Backend{{Name: "v2", Weight: 89}, {Name: "v3", Weight: 10}, {Name: "v1", Weight: 1}}, false, verdict.Fail},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := splittest.New(tc.served, splittest.Options{Seed: uint64(100 + i)})
			defer sp.Close()
			bs := declared
			if strings.Contains(tc.name, "zero-weight") {
				bs = append([]verdict.Backend{{Name: "v1", Weight: 0}}, declared...)
			}
			seq, err := verdict.NewSequential(bs, verdict.Config{})
			if err != nil {
				t.Fatal(err)
			}
			d := &Driver{URL: sp.URL, Concurrency: 8, FreshConnections: tc.fresh}
			v, sum, err := Sample(t.Context(), d, seq, 5000, 0)
			if err != nil {
				t.Fatalf("sample: %v", err)
			}
			t.Logf("%s after n=%d (sent %d in %s): %s", v.Decision, v.N, sum.Sent, sum.Elapsed, v.Message)
			if v.Decision != tc.want {
				t.Errorf("decision: got %s; want %s (%s)", v.Decision, tc.want, v.Message)
			}
			if v.N > 5000 || v.N < 1 {
				t.Errorf("n: got %d; want 1..5000", v.N)
			}
		})
	}
}

func TestSampleFailures(t *testing.T) {
	t.Parallel()
	sp := splittest.New([]splittest.Backend{{Name: "v2", Weight: 90}, {Name: "v3", Weight: 10}}, splittest.Options{
		Status: func(n int64) int {
			if n%50 == 0 {
				return http.StatusBadGateway
			}
			return http.StatusOK
		},
	})
	defer sp.Close()
	declared := []verdict.Backend{{Name: "v2", Weight: 90}, {Name: "v3", Weight: 10}}
	seq, err := verdict.NewSequential(declared, verdict.Config{})
	if err != nil {
		t.Fatal(err)
	}
	d := &Driver{URL: sp.URL, Concurrency: 1}
	v, _, err := Sample(t.Context(), d, seq, 5000, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "1 of 50 requests failed, more than the 0 allowed: 502: 1"
	if v.Decision != verdict.Fail || v.Message != want {
		t.Errorf("got %s %q; want fail %q", v.Decision, v.Message, want)
	}

	seq.Reset()
	v, _, err = Sample(t.Context(), d, seq, 5000, 200)
	if err != nil {
		t.Fatal(err)
	}
	if v.Decision != verdict.Pass || len(v.Warnings) == 0 {
		t.Errorf("with 200 failures allowed: got %s, warnings %v; want pass with a warning about failed requests", v.Decision, v.Warnings)
	}
}

// TestSampleCountsInSendingOrder: v3 answers every 10th request (by request id) and answers
// slowly, so in completion order it lags; the test must see the sending order, where
// exactly n/10 of the first n requests are v3's.
func TestSampleCountsInSendingOrder(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		n, _ := strconv.Atoi(id[strings.LastIndex(id, "-")+1:])
		name := "v2"
		if n%10 == 0 {
			name = "v3"
			time.Sleep(20 * time.Millisecond)
		}
		_, _ = w.Write([]byte(`{"backend":"` + name + `"}`))
	}))
	defer srv.Close()
	seq, err := verdict.NewSequential([]verdict.Backend{{Name: "v2", Weight: 90}, {Name: "v3", Weight: 10}}, verdict.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := Sample(t.Context(), &Driver{URL: srv.URL, Concurrency: 16}, seq, 5000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.Backends[1].Count, v.N/10; got != want {
		t.Errorf("v3 count at n=%d: got %d; want %d (the first n requests in sending order)", v.N, got, want)
	}
	if v.Decision != verdict.Pass {
		t.Errorf("decision: got %s; want pass (%s)", v.Decision, v.Message)
	}
}
