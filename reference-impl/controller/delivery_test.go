package controller

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

func snap(name string, port int32) *ir.Snapshot {
	return &ir.Snapshot{Gateway: ir.NamespacedName{Namespace: "ns", Name: name}, Listeners: []ir.Listener{{Name: "http", Port: port, Protocol: ir.ProtocolHTTP}}}
}

func TestPublishVersions(t *testing.T) {
	t.Parallel()
	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	v1, err := d.Publish(snap("gw", 80))
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := d.Publish(snap("gw", 80))
	if v2 != v1 {
		t.Errorf("unchanged content: got version %d; want %d", v2, v1)
	}
	v3, _ := d.Publish(snap("gw", 81))
	if v3 <= v1 {
		t.Errorf("changed content: got version %d; want > %d", v3, v1)
	}
}

func TestStreamAndAck(t *testing.T) {
	t.Parallel()
	acked := make(chan types.NamespacedName, 16)
	d := NewDelivery(slog.New(slog.DiscardHandler), func(gw types.NamespacedName) { acked <- gw })
	ca := mustCA(t)
	srv := tlsDelivery(t, d, ca)
	defer srv.Close()
	gw := types.NamespacedName{Namespace: "ns", Name: "gw"}
	hc := proxyClient(t, ca, gw)

	v1, _ := d.Publish(snap("gw", 80))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+ir.SnapshotsPath+"ns/gw?proxy=pod-a", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("content type: got %q; want application/x-ndjson", ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() ir.Update {
		t.Helper()
		for lines.Scan() {
			if len(bytes.TrimSpace(lines.Bytes())) == 0 {
				continue
			}
			var u ir.Update
			if err := json.Unmarshal(lines.Bytes(), &u); err != nil {
				t.Fatalf("decode stream line: %v", err)
			}
			return u
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ir.Update{}
	}
	if u := next(); u.Version != v1 || u.BaseVersion != 0 || u.Head == nil || u.Head.Listeners[0].Port != 80 {
		t.Fatalf("first line: got version %d base %d head %v; want the full state of version %d (base 0, port 80)", u.Version, u.BaseVersion, u.Head, v1)
	}
	if ok, _ := d.AckState(gw, []string{"pod-a"}); ok {
		t.Errorf("before ack: got acked; want not")
	}
	post := func(v int64, errMsg string) {
		body, _ := json.Marshal(ir.Ack{Gateway: ir.NamespacedName{Namespace: "ns", Name: "gw"}, Proxy: "pod-a", Version: v, Error: errMsg})
		r, err := hc.Post(srv.URL+ir.AcksPath, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusNoContent {
			t.Fatalf("ack: got status %d; want 204", r.StatusCode)
		}
	}
	post(v1, "")
	if ok, msg := d.AckState(gw, []string{"pod-a"}); !ok {
		t.Errorf("after ack: got not acked (%s); want acked", msg)
	}
	if ok, _ := d.AckState(gw, []string{"pod-a", "pod-b"}); ok {
		t.Errorf("pod-b never acked: got acked; want not")
	}

	v2, _ := d.Publish(snap("gw", 8080))
	if u := next(); u.Version != v2 || u.BaseVersion != v1 || u.Head == nil || u.Head.Listeners[0].Port != 8080 {
		t.Fatalf("second line: got version %d base %d head %v; want the delta from %d to %d with the head on port 8080", u.Version, u.BaseVersion, u.Head, v1, v2)
	}
	if ok, _ := d.AckState(gw, []string{"pod-a"}); ok {
		t.Errorf("new version not acked yet: got acked; want not")
	}
	post(v2, "listener http: boom")
	if ok, _ := d.AckState(gw, []string{"pod-a"}); ok {
		t.Errorf("version rejected: got acked; want not")
	}
	// Ack from another goroutine while WaitAcked blocks; errors go back through a channel
	// because t.Fatal must stay on the test goroutine.
	posted := make(chan error, 1)
	go func() {
		body, _ := json.Marshal(ir.Ack{Gateway: ir.NamespacedName{Namespace: "ns", Name: "gw"}, Proxy: "pod-a", Version: v2})
		time.Sleep(20 * time.Millisecond)
		r, err := hc.Post(srv.URL+ir.AcksPath, "application/json", bytes.NewReader(body))
		if err == nil {
			r.Body.Close()
		}
		posted <- err
	}()
	d.NotifyOnAck(gw)
	if ok, msg := d.WaitAcked(context.Background(), gw, []string{"pod-a"}, 5*time.Second); !ok {
		t.Errorf("WaitAcked: got not acked (%s); want acked", msg)
	}
	if err := <-posted; err != nil {
		t.Fatalf("post ack: %v", err)
	}
	select {
	case <-acked:
	case <-time.After(time.Second):
		t.Errorf("onAck was not called")
	}
}

func TestServeStopsWithContext(t *testing.T) {
	t.Parallel()
	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg, err := mustCA(t).ServerTLS(testServerName)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- d.Serve(ctx, addr, cfg) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: got %v; want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
