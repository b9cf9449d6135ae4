package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestReadyWaitsForFirstSnapshot: a readiness probe that arrives before the first snapshot is
// held until it is applied (the kubelet's first probe right after container start), and one
// that finds none within readyWait gets 503, not a hang past the probe timeout.
func TestReadyWaitsForFirstSnapshot(t *testing.T) {
	p := New(Options{BindAddress: "127.0.0.1", Logger: testLogger()})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	srv := httptest.NewServer(p.AdminHandler())
	defer srv.Close()
	get := func() (int, string, time.Duration) {
		start := time.Now()
		resp, err := http.Get(srv.URL + "/ready")
		if err != nil {
			t.Fatalf("GET /ready: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), time.Since(start)
	}

	code, _, took := get()
	if code != http.StatusServiceUnavailable {
		t.Fatalf("no snapshot: /ready = %d, want 503", code)
	}
	if took < readyWait || took > readyWait+500*time.Millisecond {
		t.Fatalf("no snapshot: /ready answered after %v, want about readyWait (%v)", took, readyWait)
	}

	go func() {
		time.Sleep(100 * time.Millisecond)
		if err := p.Apply(snapshot(7)); err != nil {
			t.Errorf("Apply: %v", err)
		}
	}()
	code, body, took := get()
	if code != http.StatusOK || body != "ready: version 7\n" {
		t.Fatalf("snapshot applied during the probe: /ready = %d %q, want 200 version 7", code, body)
	}
	if took < 90*time.Millisecond || took >= readyWait {
		t.Fatalf("snapshot applied 100ms into the probe: answered after %v, want soon after 100ms", took)
	}

	code, _, took = get()
	if code != http.StatusOK || took > 100*time.Millisecond {
		t.Fatalf("ready proxy: /ready = %d after %v, want 200 at once", code, took)
	}
}
