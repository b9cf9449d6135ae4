package proxy

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Metrics counts what the proxy did, exposed in the Prometheus text format.
type Metrics struct {
	requests sync.Map // requestKey -> *atomic.Uint64
	mirrors  sync.Map // resultKey -> *atomic.Uint64
	tcpConns sync.Map // tcpKey -> *atomic.Uint64
	// udpEvents: UDP flows and datagrams (udp.go); tlsConns: TLS listener connections (stream.go).
	udpEvents, tlsConns udpMetrics

	configVersion  atomic.Int64
	configApplied  atomic.Uint64
	configRejected atomic.Uint64
}

type requestKey struct {
	route, backend string
	code           int
}

type resultKey struct{ backend, result string }

type tcpKey struct{ route, backend, result string }

func newMetrics() *Metrics {
	m := &Metrics{}
	m.configVersion.Store(-1)
	return m
}

func inc[K comparable](m *sync.Map, k K) {
	if v, ok := m.Load(k); ok {
		v.(*atomic.Uint64).Add(1)
		return
	}
	v, _ := m.LoadOrStore(k, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

func (m *Metrics) request(route, backend string, code int) {
	inc(&m.requests, requestKey{route, backend, code})
}

func (m *Metrics) mirror(backend, result string) { inc(&m.mirrors, resultKey{backend, result}) }

func (m *Metrics) tcp(route, backend, result string) {
	inc(&m.tcpConns, tcpKey{route, backend, result})
}

// Requests returns the count of requests with the given labels; tests use it.
func (m *Metrics) Requests(route, backend string, code int) uint64 {
	if v, ok := m.requests.Load(requestKey{route, backend, code}); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// Mirrors returns the count of mirror attempts to backend with result ("sent", "failed",
// "dropped_saturated", ...).
func (m *Metrics) Mirrors(backend, result string) uint64 {
	if v, ok := m.mirrors.Load(resultKey{backend, result}); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func labels(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s="%s"`, kv[i], labelEscaper.Replace(kv[i+1]))
	}
	b.WriteByte('}')
	return b.String()
}

// WriteText writes every metric in the Prometheus text exposition format (version 0.0.4).
func (m *Metrics) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	family := func(name, typ, help string, sm *sync.Map, line func(k any) string) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		var lines []string
		sm.Range(func(k, v any) bool {
			lines = append(lines, name+line(k)+" "+strconv.FormatUint(v.(*atomic.Uint64).Load(), 10))
			return true
		})
		sort.Strings(lines)
		for _, l := range lines {
			bw.WriteString(l + "\n")
		}
	}
	family("gatecheck_proxy_requests_total", "counter", "HTTP and gRPC requests by route rule, backend and status code.", &m.requests, func(k any) string {
		rk := k.(requestKey)
		return labels("route", rk.route, "backend", rk.backend, "code", strconv.Itoa(rk.code))
	})
	family("gatecheck_proxy_mirror_requests_total", "counter", "Mirrored requests by backend and result (sent, failed, dropped_*).", &m.mirrors, func(k any) string {
		rk := k.(resultKey)
		return labels("backend", rk.backend, "result", rk.result)
	})
	family("gatecheck_proxy_tcp_connections_total", "counter", "TCP connections by route, backend and result.", &m.tcpConns, func(k any) string {
		tk := k.(tcpKey)
		return labels("route", tk.route, "backend", tk.backend, "result", tk.result)
	})
	family("gatecheck_proxy_udp_events_total", "counter", "UDP flows and datagrams by route, backend and result.", &m.udpEvents.m, func(k any) string {
		tk := k.(tcpKey)
		return labels("route", tk.route, "backend", tk.backend, "result", tk.result)
	})
	family("gatecheck_proxy_tls_connections_total", "counter", "TLS listener connections by route, backend and result.", &m.tlsConns.m, func(k any) string {
		tk := k.(tcpKey)
		return labels("route", tk.route, "backend", tk.backend, "result", tk.result)
	})
	fmt.Fprintf(bw, "# HELP gatecheck_proxy_config_version Version of the applied snapshot (-1 before the first).\n# TYPE gatecheck_proxy_config_version gauge\ngatecheck_proxy_config_version %d\n", m.configVersion.Load())
	fmt.Fprintf(bw, "# HELP gatecheck_proxy_config_applies_total Snapshots applied or rejected.\n# TYPE gatecheck_proxy_config_applies_total counter\n")
	fmt.Fprintf(bw, "gatecheck_proxy_config_applies_total{result=\"applied\"} %d\ngatecheck_proxy_config_applies_total{result=\"rejected\"} %d\n", m.configApplied.Load(), m.configRejected.Load())
	return bw.Flush()
}
