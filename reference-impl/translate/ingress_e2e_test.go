package translate

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	fixtures "github.com/gatecheck/gatecheck/fixtures/migration"
	"github.com/gatecheck/gatecheck/migrate"
	"github.com/gatecheck/gatecheck/migrate/check"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

// TestIngressMigrationThroughRealProxies is the migration suite without a cluster: the
// fixtures' Ingresses served by the reference (translate + the real proxy, on loopback) are
// compared, request by request, with their hand-written migration, with gatecheck migrate's
// output, and with the seeded mistake, which must differ at /api; the canary split is
// sampled with the verdict engine on both sides.
func TestIngressMigrationThroughRealProxies(t *testing.T) {
	const ns = "mig"
	backends := []string{"web", "web-v2", "api", "docs", "fallback"}
	in := &Input{ControllerName: testController}
	in.GatewayClasses = append(in.GatewayClasses, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gc"}, Spec: gwv1.GatewayClassSpec{ControllerName: testController}})
	in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	for _, b := range backends {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]string{"backend": b, "path": r.URL.Path})
		}))
		t.Cleanup(srv.Close)
		host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
		p, _ := strconv.Atoi(port)
		in.Services = append(in.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: b},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "p80", Port: 80}}}})
		in.EndpointSlices = append(in.EndpointSlices, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: b, Labels: map[string]string{discoveryv1.LabelServiceName: b}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("p80"), Port: ptr.To(int32(p))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})
	}
	certPEM, keyPEM := testCert(t, "shop.example.com")
	in.Secrets = append(in.Secrets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}})
	// The Ingress data plane, as fixtures/migration/suite.yaml declares it.
	in.Gateways = append(in.Gateways, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "migration"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "gc", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}})
	in.IngressClasses = append(in.IngressClasses, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "gatecheck"}, Spec: networkingv1.IngressClassSpec{
		Controller: testController,
		Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptr.To(gwv1.GroupName), Kind: "Gateway", Name: "migration", Namespace: ptr.To(ns), Scope: ptr.To("Namespace")},
	}})
	var objs migrate.Objects
	if err := migrate.Decode(bytes.NewReader(renderFixture(t, "ingresses.yaml", map[string]any{"Namespace": ns, "IngressClass": "gatecheck"})), "ingresses.yaml", &objs); err != nil {
		t.Fatal(err)
	}
	in.Ingresses = objs.Ingresses
	// The migrations: by hand, by gatecheck migrate, and the seeded mistake.
	for _, gw := range []string{"by-hand", "mistake"} {
		addGatewayAPI(t, in, renderFixture(t, "migration.yaml", map[string]any{"Namespace": ns, "GatewayClass": "gc", "Gateway": gw, "SeedMistake": gw == "mistake"}))
	}
	conv, err := migrate.Convert(objs.Ingresses, migrate.Options{GatewayClass: "gc", GatewayName: "migrated"})
	if err != nil || len(conv.Unsupported()) > 0 {
		t.Fatalf("migrate: %v %v", err, conv.Unsupported())
	}
	out, err := migrate.Marshal(conv)
	if err != nil {
		t.Fatal(err)
	}
	addGatewayAPI(t, in, out)

	res := Translate(in)
	serve := func(name string) check.Target {
		r, ok := res.Gateways[nn(ns, name)]
		if !ok || !r.Valid {
			t.Fatalf("Gateway %s not translated or not valid: %+v", name, r)
		}
		snap := *r.Snapshot
		snap.Version = 1
		// Loopback ports instead of 80 and 443.
		ports := map[int32]int32{80: freePort(t), 443: freePort(t)}
		snap.Listeners = append([]ir.Listener(nil), snap.Listeners...)
		for i := range snap.Listeners {
			snap.Listeners[i].Port = ports[snap.Listeners[i].Port]
		}
		if err := snap.Validate(); err != nil {
			t.Fatalf("Gateway %s: %v", name, err)
		}
		p := proxy.New(proxy.Options{BindAddress: "127.0.0.1"})
		t.Cleanup(func() { p.Close(context.Background()) })
		if err := p.Apply(&snap); err != nil {
			t.Fatalf("Gateway %s: apply: %v", name, err)
		}
		return check.Target{HTTP: "127.0.0.1:" + strconv.Itoa(int(ports[80])), HTTPS: "127.0.0.1:" + strconv.Itoa(int(ports[443])), Timeout: 5 * time.Second}
	}
	ingress := serve("migration")
	plan := check.Matrix(objs.Ingresses)
	if len(plan.Requests) < 40 || len(plan.Splits) != 1 {
		t.Fatalf("plan: %d requests, %d splits", len(plan.Requests), len(plan.Splits))
	}
	ctx := context.Background()
	for _, gw := range []string{"by-hand", "migrated"} {
		r := check.Run(ctx, plan, ingress, serve(gw))
		if r.Differing != 0 {
			t.Errorf("%s: %d of %d requests differ:\n%s", gw, r.Differing, len(r.Rows), r.Table())
		}
		// Spot checks that the Ingress side is served as the Ingress spec and annotations say.
		for _, row := range r.Rows {
			q := row.Request
			switch {
			case q.Scheme == "http" && q.Host == "shop.example.com" && q.Path == "/api" && len(q.Header) == 0:
				if row.Ingress.Status != 308 || row.Ingress.Location != "https://shop.example.com/api" {
					t.Errorf("%s: HTTP to a TLS host: %s; want 308 to https", q, row.Ingress)
				}
			case q.Scheme == "https" && q.Host == "shop.example.com" && q.Path == "/api/sub/page":
				if row.Ingress.Backend != "api" {
					t.Errorf("%s: %s; want api", q, row.Ingress)
				}
			case q.Scheme == "http" && q.Host == "docs.example.com" && q.Path == "/docs/sub/page":
				if row.Ingress.Backend != "docs" || row.Ingress.Path != "/manual/sub/page" {
					t.Errorf("%s: %s; want docs seeing /manual/sub/page (rewrite-target)", q, row.Ingress)
				}
			case q.Scheme == "http" && q.Host == "old.example.com" && q.Path == "/":
				if row.Ingress.Status != 301 || row.Ingress.Location != "https://shop.example.com/moved" {
					t.Errorf("%s: %s; want 301 to https://shop.example.com/moved", q, row.Ingress)
				}
			case q.Host == "unknown-host.invalid":
				if row.Ingress.Backend != "fallback" {
					t.Errorf("%s: %s; want the default backend", q, row.Ingress)
				}
			case q.Scheme == "https" && q.Path == "/" && q.Header["x-canary"] == "always":
				if row.Ingress.Backend != "web-v2" {
					t.Errorf("%s: %s; want the canary", q, row.Ingress)
				}
			}
		}
	}
	r := check.Run(ctx, plan, ingress, serve("mistake"))
	if r.First == nil || !strings.HasPrefix(r.First.Request.Path, "/api/") {
		t.Fatalf("seeded mistake: first difference %+v; want one under /api/\n%s", r.First, r.Table())
	}
	t.Logf("seeded mistake found: %s: Ingress %s, Gateway %s (%s)", r.First.Request, r.First.Ingress, r.First.Gateway, r.First.Diff)

	// The canary split, sampled through the Ingress side with the verdict engine.
	s := plan.Splits[0]
	d := &traffic.Driver{URL: ingress.URL(s.Scheme, s.Path), Host: s.Host, InsecureSkipVerify: true, Concurrency: 8}
	seq, err := verdict.NewSequential(s.Backends, verdict.Config{MaxRequests: verdict.DefaultMaxRequests})
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := traffic.Sample(ctx, d, seq, verdict.DefaultMaxRequests, 0)
	if err != nil || v.Decision != verdict.Pass {
		t.Fatalf("canary split %v through the Ingress: %v %s %s", s.Backends, err, v.Decision, v.Message)
	}
	t.Logf("canary split through the Ingress: %s after %d requests", v.Decision, v.N)
}

func renderFixture(t *testing.T, file string, data map[string]any) []byte {
	t.Helper()
	tpl, err := template.New(file).Option("missingkey=error").ParseFS(fixtures.Files, file)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// addGatewayAPI decodes Gateways and HTTPRoutes into in.
func addGatewayAPI(t *testing.T, in *Input, docs []byte) {
	t.Helper()
	for _, doc := range bytes.Split(docs, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		switch tm.Kind {
		case "Gateway":
			g := &gwv1.Gateway{}
			if err := yaml.UnmarshalStrict(doc, g); err != nil {
				t.Fatal(err)
			}
			in.Gateways = append(in.Gateways, g)
		case "HTTPRoute":
			r := &gwv1.HTTPRoute{}
			if err := yaml.UnmarshalStrict(doc, r); err != nil {
				t.Fatal(err)
			}
			in.HTTPRoutes = append(in.HTTPRoutes, r)
		case "":
		default:
			t.Fatalf("unexpected kind %s", tm.Kind)
		}
	}
}

func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

func testCert(t *testing.T, host string) ([]byte, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}
