package controller

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
	"github.com/gatecheck/gatecheck/reference-impl/proxy/delivery"
)

func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// TestDeliveryToRealProxy runs the controller's delivery server against the real proxy and its
// delivery client: a published snapshot is served and acknowledged, and a new version replaces it.
func TestDeliveryToRealProxy(t *testing.T) {
	t.Parallel()
	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	ca := mustCA(t)
	srv := tlsDelivery(t, d, ca)
	defer srv.Close()
	// Cancel before srv.Close (defers run last-first): Close waits for the open stream.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	port := freePort(t)
	redirect := func(host string) *ir.Snapshot {
		return &ir.Snapshot{Gateway: ir.NamespacedName{Namespace: "ns", Name: "gw"}, Listeners: []ir.Listener{{
			Name: "http", Port: port, Protocol: ir.ProtocolHTTP,
			HTTPRoutes: []ir.HTTPRoute{{RouteMeta: ir.RouteMeta{Namespace: "ns", Name: "r"}, Rules: []ir.HTTPRule{{
				Filters: []ir.Filter{{Type: ir.FilterRequestRedirect, RequestRedirect: &ir.Redirect{Hostname: &host}}},
			}}}},
		}}}
	}
	if _, err := d.Publish(redirect("one.example")); err != nil {
		t.Fatal(err)
	}
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1"})
	defer p.Close(context.Background())
	c := &delivery.Client{BaseURL: srv.URL, Gateway: ir.NamespacedName{Namespace: "ns", Name: "gw"}, Proxy: "pod-a",
		HTTP: proxyClient(t, ca, types.NamespacedName{Namespace: "ns", Name: "gw"})}
	go c.Run(ctx, p)

	key := types.NamespacedName{Namespace: "ns", Name: "gw"}
	if ok, msg := d.WaitAcked(ctx, key, []string{"pod-a"}, 10*time.Second); !ok {
		t.Fatalf("first version: %s", msg)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	location := func() string {
		resp, err := hc.Get("http://127.0.0.1:" + strconv.Itoa(int(port)) + "/x")
		if err != nil {
			t.Fatalf("request through proxy: %v", err)
		}
		resp.Body.Close()
		return resp.Header.Get("Location")
	}
	// The listener port is not the scheme's default, so the redirect keeps it (spec).
	want := func(host string) string { return "http://" + host + ":" + strconv.Itoa(int(port)) + "/x" }
	if got := location(); got != want("one.example") {
		t.Errorf("Location: got %q; want %q", got, want("one.example"))
	}
	if _, err := d.Publish(redirect("two.example")); err != nil {
		t.Fatal(err)
	}
	if ok, msg := d.WaitAcked(ctx, key, []string{"pod-a"}, 10*time.Second); !ok {
		t.Fatalf("second version: %s", msg)
	}
	if got := location(); got != want("two.example") {
		t.Errorf("Location after update: got %q; want %q", got, want("two.example"))
	}
}
