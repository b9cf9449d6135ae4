// Package migration is the Ingress to Gateway API migration suite: the same requests, derived
// from the Ingress rules (hosts x paths x canary headers, HTTP and HTTPS, plus near-misses),
// through the Ingresses and through the Gateway API objects that replace them, compared
// answer by answer (status, backend, path seen, redirect Location); canary weights are
// sampled on both sides with the verdict engine. A seeded mistake must fail.
package migration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/gateway-api/pkg/features"

	fixtures "github.com/gatecheck/gatecheck/fixtures/migration"
	"github.com/gatecheck/gatecheck/suites/internal/gwtest"
)

// IngressClass is the class the fixtures' Ingresses use.
const IngressClass = "gatecheck"

// referenceController is the reference implementation's controller name: it must serve the
// Ingresses; another implementation that does not is skipped, not failed.
const referenceController = "gatecheck.dev/reference"

var (
	env *gwtest.Env
	// controller is the GatewayClass's controllerName, which the IngressClass names too.
	controller string
	data       map[string]any
)

// Setup applies the Ingress data plane (Gateway "migration", IngressClass, backends, TLS
// Secret); suites/all runs it in its BeforeSuite when this suite is selected.
func Setup(ctx SpecContext) {
	env = gwtest.Setup(ctx, "migration")
	env.Require(features.SupportGateway, features.SupportHTTPRoute)
	gc, err := env.Dynamic.Resource(schema.GroupVersionResource{Group: gwtest.GatewayAPIGroup, Version: "v1", Resource: "gatewayclasses"}).
		Get(ctx, env.Config.GatewayClass, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	controller, _, _ = unstructuredString(gc.Object, "spec", "controllerName")
	if need := ingressSideNeeds(controller); need != "" {
		// Not applicable, not "could not run": the implementation under test is judged on its
		// Gateway API behaviour, and this comparison also needs its Ingress side served.
		gwtest.SkipNotClaimed(env.Config.GatewayClass, fmt.Sprintf("its controllerName %s; only %s serves the suite's Ingresses", controller, referenceController),
			[]string{need})
	}
	cert, key, err := selfSigned("shop.example.com")
	Expect(err).NotTo(HaveOccurred())
	data = map[string]any{
		"IngressClass": IngressClass, "IngressController": controller,
		"TLSCert": base64.StdEncoding.EncodeToString(cert), "TLSKey": base64.StdEncoding.EncodeToString(key),
	}
	env.ApplyFixture(ctx, fixtures.Files, "suite.yaml", data)
}

// ingressSideNeeds returns what an implementation with this controllerName lacks to take the
// suite, or "": the Ingress side needs IngressClass gatecheck served through the Gateway its
// parameters name, which only the reference does. An implementation that serves Ingress its
// own way (Traefik's kubernetesIngress provider, ingress-nginx's annotations unread) would be
// compared with behaviour it never promised.
func ingressSideNeeds(controller string) string {
	if controller == referenceController {
		return ""
	}
	return "Ingress (IngressClass " + IngressClass + " served through its parameters' Gateway)"
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[f]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// ingresses renders the fixtures' Ingresses as typed objects (for the matrix and migrate).
func ingresses() []*networkingv1.Ingress {
	GinkgoHelper()
	var out []*networkingv1.Ingress
	for _, o := range env.Render(fixtures.Files, "ingresses.yaml", data) {
		ing := &networkingv1.Ingress{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Obj.Object, ing)).To(Succeed())
		out = append(out, ing)
	}
	return out
}

// ingressAddress waits until Ingress name has a status address and returns it.
func ingressAddress(ctx context.Context, name string) string {
	GinkgoHelper()
	gvr := schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
	deadline := time.Now().Add(90 * time.Second)
	next := time.Now()
	for {
		u, err := env.Dynamic.Resource(gvr).Namespace(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			ing := &networkingv1.Ingress{}
			if runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, ing) == nil {
				for _, a := range ing.Status.LoadBalancer.Ingress {
					if a.IP != "" {
						return a.IP
					}
					if a.Hostname != "" {
						return a.Hostname
					}
				}
			}
		}
		if time.Now().After(deadline) {
			Fail(fmt.Sprintf("Ingress %s/%s of class %s has no status.loadBalancer address after 90s (last error: %v)", env.Namespace, name, IngressClass, err))
		}
		if time.Now().After(next) {
			fmt.Fprintf(GinkgoWriter, "waiting for Ingress %s/%s to get an address\n", env.Namespace, name)
			next = time.Now().Add(10 * time.Second)
		}
		select {
		case <-ctx.Done():
			Fail(ctx.Err().Error())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// selfSigned makes a certificate and key (PEM) for host.
func selfSigned(host string) ([]byte, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
}
