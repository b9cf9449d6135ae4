package delivery_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
	"github.com/gatecheck/gatecheck/reference-impl/proxy/delivery"
	"github.com/google/go-cmp/cmp"
)

var gw = ir.NamespacedName{Namespace: "infra", Name: "gw"}

// fakeController serves scripted stream connections: connection i writes lines[i] (an empty
// string is a heartbeat) and then, if hang[i], stays open until the client goes away.
type fakeController struct {
	t     *testing.T
	lines [][]string
	hang  []bool

	mu      sync.Mutex
	conns   int
	queries []string
	acks    []ir.Ack
}

func (f *fakeController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == ir.SnapshotsPath+"infra/gw":
		f.mu.Lock()
		i := f.conns
		f.conns++
		f.queries = append(f.queries, r.URL.RawQuery)
		f.mu.Unlock()
		if i >= len(f.lines) {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, l := range f.lines[i] {
			w.Write([]byte(l + "\n"))
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
		if f.hang[i] {
			<-r.Context().Done()
		}
	case r.Method == http.MethodPost && r.URL.Path == ir.AcksPath:
		var a ir.Ack
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.acks = append(f.acks, a)
		f.mu.Unlock()
	default:
		http.NotFound(w, r)
	}
}

// snap is the full state of version as one stream line: no listeners, or an invalid one.
func snap(t *testing.T, version int64, valid bool) string {
	s := ir.Snapshot{Version: version, Gateway: gw}
	if !valid {
		s.Listeners = []ir.Listener{{Name: "bad", Port: 0, Protocol: ir.ProtocolHTTP}}
	}
	return line(t, delta.Full(delta.FromSnapshot(&s)))
}

func line(t *testing.T, u *ir.Update) string {
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withListener is the delta from version base (no listeners) to version, which adds an HTTP
// listener on a free port with one route.
func withListener(t *testing.T, base, version int64) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	from := delta.FromSnapshot(&ir.Snapshot{Version: base, Gateway: gw})
	to := delta.FromSnapshot(&ir.Snapshot{Version: version, Gateway: gw, Listeners: []ir.Listener{{Name: "http", Port: port, Protocol: ir.ProtocolHTTP,
		HTTPRoutes: []ir.HTTPRoute{{RouteMeta: ir.RouteMeta{Namespace: "infra", Name: "r"}, Rules: []ir.HTTPRule{{}}}}}}})
	return line(t, delta.Diff(from, to))
}

func TestClientAppliesAcksAndReconnects(t *testing.T) {
	t.Parallel()
	f := &fakeController{t: t,
		lines: [][]string{
			// First connection: v1, a heartbeat, an invalid v2, undecodable garbage, v3; then
			// the controller drops the connection.
			{snap(t, 1, true), "", snap(t, 2, false), `{"version": 7, "upserts": "oops"}`, snap(t, 3, true)},
			// Second connection: the current state again, then silence (no heartbeat), so
			// the idle timeout must end it.
			{snap(t, 3, true)},
			// Third: a newer version, a delta on it, then a delta on a base the proxy does not
			// have: the client must end the stream itself (the controller keeps it open)
			// without acknowledging it.
			{snap(t, 4, true), withListener(t, 4, 5), withListener(t, 6, 7)},
			// Fourth: the full state.
			{snap(t, 8, true)},
		},
		hang: []bool{false, true, true, true},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	p := proxy.New(proxy.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &delivery.Client{BaseURL: srv.URL, Gateway: gw, Proxy: "pod-1", MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, p) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.acks)
		f.mu.Unlock()
		if n >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for 8 acks; got %d", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run: got %v; want context.Canceled", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	type got struct {
		Version int64
		Failed  bool
	}
	var acks []got
	for _, a := range f.acks {
		if a.Proxy != "pod-1" || a.Gateway != gw {
			t.Errorf("ack identity: got %s %s; want pod-1 %s", a.Proxy, a.Gateway, gw)
		}
		acks = append(acks, got{a.Version, a.Error != ""})
	}
	want := []got{{1, false}, {2, true}, {7, true}, {3, false}, {3, false}, {4, false}, {5, false}, {8, false}}
	if d := cmp.Diff(want, acks); d != "" {
		t.Errorf("acks (-want +got):\n%s", d)
	}
	if p.Version() != 8 {
		t.Errorf("proxy version: got %d; want 8", p.Version())
	}
	if f.conns != 4 {
		t.Errorf("stream connections: got %d; want 4 (the wrong base ends the third)", f.conns)
	}
	if f.queries[0] != "proxy=pod-1" {
		t.Errorf("stream query: got %q; want proxy=pod-1", f.queries[0])
	}
}
