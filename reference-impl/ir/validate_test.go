package ir

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func validSnapshot() *Snapshot {
	return &Snapshot{
		Version: 3,
		Gateway: NamespacedName{Namespace: "infra", Name: "gw"},
		Listeners: []Listener{{
			Name: "http", Port: 80, Protocol: ProtocolHTTP, Hostname: "*.example.com",
			HTTPRoutes: []HTTPRoute{{
				RouteMeta: RouteMeta{Namespace: "app", Name: "canary", CreationTimestamp: time.Unix(1, 0)},
				Rules: []HTTPRule{{
					Matches: []HTTPMatch{{Path: &PathMatch{Type: MatchPathPrefix, Value: "/api"},
						Headers: []HeaderMatch{{Type: MatchExact, Name: "x-api-version", Value: "v2"}}}},
					Filters: []Filter{{Type: FilterRequestMirror, RequestMirror: &Mirror{Percent: 50,
						Backend: Backend{Name: "app/mirror:8080", Endpoints: []Endpoint{{Address: "10.0.0.9", Port: 8080}}}}}},
					Backends: []Backend{
						{Name: "app/v2:8080", Weight: 90, Endpoints: []Endpoint{{Address: "10.0.0.1", Port: 8080}},
							TLS: &BackendTLS{Policy: "app/v2", ServerName: "v2.app.example", SystemCAs: true,
								SubjectAltNames: []SubjectAltName{{Hostname: "v2.app.example"}, {URI: "spiffe://app/v2"}}}},
						{Name: "app/v3:8080", Weight: 10, Invalid: "service not found"},
					},
					Timeouts: &Timeouts{Request: Duration(2 * time.Second), BackendRequest: Duration(time.Second)},
				}},
			}},
		}, {
			Name: "tcp", Port: 9000, Protocol: ProtocolTCP,
			TCPRoutes: []TCPRoute{{RouteMeta: RouteMeta{Namespace: "app", Name: "tcp"},
				Backends: []Backend{{Name: "app/tcp:9000", Weight: 1, Endpoints: []Endpoint{{Address: "10.0.0.2", Port: 9000}}}}}},
		}},
	}
}

func TestValidateAcceptsValid(t *testing.T) {
	t.Parallel()
	if err := validSnapshot().Validate(); err != nil {
		t.Fatalf("Validate() = %v; want nil", err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(s *Snapshot)
		want   string
	}{
		{"port", func(s *Snapshot) { s.Listeners[0].Port = 0 }, `listeners[0] "http".port: 0 out of range`},
		{"protocol", func(s *Snapshot) { s.Listeners[0].Protocol = "SCTP" }, `listeners[0] "http".protocol: unsupported "SCTP"`},
		{"duplicate name", func(s *Snapshot) { s.Listeners[1].Name = "http" }, `duplicate listener name`},
		{"tcp shares port", func(s *Snapshot) { s.Listeners[1].Port = 80 }, `port: 80 already used by a HTTP listener`},
		{"https without cert", func(s *Snapshot) { s.Listeners[0].Protocol = ProtocolHTTPS }, `HTTPS listener needs at least one certificate`},
		{"hostname", func(s *Snapshot) { s.Listeners[0].Hostname = "Bad_Host" }, `listeners[0] "http".hostname`},
		{"retry attempts", func(s *Snapshot) { s.Listeners[0].HTTPRoutes[0].Rules[0].Retry = &Retry{Attempts: 0} }, `.rules[0].retry.attempts: 0 (want 1 to 100)`},
		{"retry code", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Retry = &Retry{Attempts: 1, Codes: []int{200}}
		}, `.rules[0].retry.codes[0]: 200 (want 400 to 599)`},
		{"rule name", func(s *Snapshot) { s.Listeners[0].HTTPRoutes[0].Rules[0].Name = "Named_Rule" }, `.rules[0].name: "Named_Rule" is not a section name`},
		{"path regex", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Matches[0].Path = &PathMatch{Type: MatchRegularExpression, Value: "(["}
		}, `httpRoutes[0] app/canary.rules[0].matches[0].path.value: invalid regular expression`},
		{"relative path", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Matches[0].Path.Value = "api"
		}, `must start with /`},
		{"empty path element", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Matches[0].Path.Value = "//"
		}, `matches[0].path.value: "//" must not contain "//"`},
		{"dot-dot path end", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Matches[0].Path.Value = "/api/.."
		}, `must not end with "/.."`},
		{"encoded slash", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Matches[0].Path.Value = "/a%2Fb"
		}, `must not contain "%2F"`},
		{"negative weight", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Backends[0].Weight = -1
		}, `backends[0] "app/v2:8080".weight: -1 must be >= 0`},
		{"endpoint address", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Backends[0].Endpoints[0].Address = "example.com"
		}, `endpoints[0].address: "example.com" is not an IP address`},
		{"mirror percent", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Filters[0].RequestMirror.Percent = 101
		}, `requestMirror.percent: 101 out of range`},
		{"filter body mismatch", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Filters[0].Type = FilterURLRewrite
		}, `type URLRewrite but its body is not set`},
		{"timeouts", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Timeouts.BackendRequest = Duration(3 * time.Second)
		}, `timeouts.backendRequest: 3s exceeds request timeout 2s`},
		{"backend tls server name", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Backends[0].TLS.ServerName = ""
		}, `backends[0] "app/v2:8080".tls.serverName: "" is not a hostname`},
		{"backend tls no roots", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Backends[0].TLS.SystemCAs = false
		}, `.tls.caCertPEM: no PEM certificate in it`},
		{"backend tls both roots", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Backends[0].TLS.CACertPEM = []byte("x")
		}, `.tls: caCertPEM and systemCAs are exclusive`},
		{"backend tls san", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Backends[0].TLS.SubjectAltNames[1] = SubjectAltName{URI: "no-scheme"}
		}, `.tls.subjectAltNames[1].uri: "no-scheme" is not an absolute URI`},
		{"backend tls san both", func(s *Snapshot) {
			s.Listeners[0].HTTPRoutes[0].Rules[0].Backends[0].TLS.SubjectAltNames[0].URI = "spiffe://x"
		}, `.tls.subjectAltNames[0]: exactly one of hostname and uri must be set`},
		{"backend client certificate", func(s *Snapshot) {
			s.BackendClientCertificate = &Certificate{Name: "infra/client", CertPEM: []byte("x"), KeyPEM: []byte("y")}
		}, `backendClientCertificate "infra/client": not a valid certificate and key`},
		{"tcp route on http", func(s *Snapshot) {
			s.Listeners[0].TCPRoutes = s.Listeners[1].TCPRoutes
		}, `HTTP listener cannot carry TCP routes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := validSnapshot()
			tc.mutate(s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSnapshotJSONRoundTrip(t *testing.T) {
	t.Parallel()
	s := validSnapshot()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got Snapshot
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if got.Listeners[0].HTTPRoutes[0].Rules[0].Timeouts.Request.D() != 2*time.Second {
		t.Fatalf("timeouts.request = %v; want 2s", got.Listeners[0].HTTPRoutes[0].Rules[0].Timeouts.Request.D())
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("round-tripped snapshot invalid: %v", err)
	}
}

func FuzzSnapshotValidate(f *testing.F) {
	b, _ := json.Marshal(validSnapshot())
	f.Add(b)
	f.Add([]byte(`{"version":1,"gateway":{"namespace":"a","name":"b"},"listeners":[{"name":"x","port":70000}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Snapshot
		if json.Unmarshal(data, &s) != nil {
			return
		}
		_ = s.Validate() // must never panic
	})
}

// BenchmarkValidate1000Routes: the proxy validates every snapshot it applies, so this is on
// the route-propagation path. It reports validation time as a ratio to decoding the same
// snapshot's JSON (which every applied snapshot also pays), measured in the same run.
func BenchmarkValidate1000Routes(b *testing.B) {
	s := validSnapshot()
	base := s.Listeners[0].HTTPRoutes[0]
	for i := range 1000 {
		r := base
		r.Name = fmt.Sprintf("route-%d", i)
		r.Hostnames = []string{fmt.Sprintf("r%d.example.com", i)}
		s.Listeners[0].HTTPRoutes = append(s.Listeners[0].HTTPRoutes, r)
	}
	data, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var validate, decode time.Duration
	for b.Loop() {
		t := time.Now()
		if err := s.Validate(); err != nil {
			b.Fatal(err)
		}
		validate += time.Since(t)
		t = time.Now()
		var d Snapshot
		if err := json.Unmarshal(data, &d); err != nil {
			b.Fatal(err)
		}
		decode += time.Since(t)
	}
	b.ReportMetric(float64(validate)/float64(decode), "validate/decode")
}
