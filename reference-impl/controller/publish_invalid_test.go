package controller

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
	"github.com/gatecheck/gatecheck/reference-impl/proxy/delivery"
)

// TestPublishInvalid checks that an invalid snapshot (a translation bug) still fails Publish,
// although it is validated after the streams were woken, and that a valid one does not.
func TestPublishInvalid(t *testing.T) {
	t.Parallel()
	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	if _, err := d.Publish(snap("gw", 80)); err != nil {
		t.Fatalf("valid snapshot: got %v; want no error", err)
	}
	_, err := d.Publish(snap("gw", 0))
	if err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("snapshot with port 0: got error %v; want one naming the port", err)
	}
	// Publishing the same invalid content again must fail again, not pass as "unchanged".
	if _, err := d.Publish(snap("gw", 0)); err == nil {
		t.Errorf("same invalid snapshot again: got no error; want one")
	}
	d.Forget(types.NamespacedName{Namespace: "ns", Name: "gw"})
	if _, err := d.Publish(snap("gw", 0)); err == nil {
		t.Errorf("invalid snapshot after Forget: got no error; want one")
	}
}

// TestPublishInvalidWithProxy covers the deferred validation: with a proxy connected an
// invalid snapshot is published, the proxy rejects it, the controller then validates it,
// asks for a reconcile (onAck), and publishing the same content again fails.
func TestPublishInvalidWithProxy(t *testing.T) {
	t.Parallel()
	kicked := make(chan types.NamespacedName, 16)
	d := NewDelivery(slog.New(slog.DiscardHandler), func(gw types.NamespacedName) { kicked <- gw })
	ca := mustCA(t)
	srv := tlsDelivery(t, d, ca)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key := types.NamespacedName{Namespace: "ns", Name: "gw"}

	good := snap("gw", freePort(t))
	v1, err := d.Publish(good)
	if err != nil {
		t.Fatalf("valid snapshot: got %v; want no error", err)
	}
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1"})
	defer p.Close(context.Background())
	c := &delivery.Client{BaseURL: srv.URL, Gateway: ir.NamespacedName{Namespace: "ns", Name: "gw"}, Proxy: "pod-a",
		HTTP: proxyClient(t, ca, types.NamespacedName{Namespace: "ns", Name: "gw"})}
	go c.Run(ctx, p)
	if ok, msg := d.WaitAcked(ctx, key, []string{"pod-a"}, 10*time.Second); !ok {
		t.Fatalf("valid snapshot not applied: %s", msg)
	}

	bad := snap("gw", 0)
	if _, err := d.Publish(bad); err != nil {
		t.Fatalf("invalid snapshot with a proxy connected: got %v; want no error until validated", err)
	}
	select {
	case gw := <-kicked:
		if gw != key {
			t.Errorf("onAck: got gateway %s; want %s", gw, key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reconcile requested within 10s after the proxy rejected an invalid snapshot")
	}
	if _, err := d.Publish(bad); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("same invalid snapshot again: got error %v; want the validation error", err)
	}
	if got := p.Version(); got != v1 {
		t.Errorf("proxy version: got %d; want %d, the valid version, still applied", got, v1)
	}
}
