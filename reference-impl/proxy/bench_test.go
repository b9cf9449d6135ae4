package proxy

import (
	"io"
	"testing"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// BenchmarkProxyHTTP1 measures one request through the proxy to a loopback backend over
// keep-alive HTTP/1.1; BenchmarkDirectHTTP1 is the same request without the proxy, the
// baseline to compare with (the difference is the proxy's cost). "fast" is the default
// (h1Server relaying over the h1 fast path), "transport" forwards through ReverseProxy and
// net/http's Transport (StdHTTP1Upstream), "netserver" serves with net/http's server
// (StdHTTP1Server), "std" both.
func BenchmarkProxyHTTP1(b *testing.B) {
	b.Run("fast", func(b *testing.B) { benchProxy(b, Options{}) })
	b.Run("transport", func(b *testing.B) { benchProxy(b, Options{StdHTTP1Upstream: true}) })
	b.Run("netserver", func(b *testing.B) { benchProxy(b, Options{StdHTTP1Server: true}) })
	b.Run("std", func(b *testing.B) { benchProxy(b, Options{StdHTTP1Upstream: true, StdHTTP1Server: true}) })
}

func benchProxy(b *testing.B, opts Options) {
	be := startBackend(b, "b")
	port := freePort(b)
	startProxy(b, opts, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
		RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{be.irBackend(1)}}}}}}))
	benchGet(b, proxyURL(port, "/bench"))
}

func BenchmarkDirectHTTP1(b *testing.B) {
	be := startBackend(b, "b")
	benchGet(b, "http://"+be.addr.String()+"/bench")
}

func benchGet(b *testing.B, url string) {
	c := h1Client()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
}
