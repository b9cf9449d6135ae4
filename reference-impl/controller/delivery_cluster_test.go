//go:build cluster

package controller

// The delivery channel's authorization on a real cluster with the reference implementation
// installed (for example after `gatecheck run --cluster host --keep`):
//
//	KUBECONFIG=... go test -tags cluster ./reference-impl/controller -run TestDeliveryAuthInCluster -v
//
// Two Gateways, a (HTTPS, with a TLS key) and b (HTTP), are provisioned and must become
// Programmed (their proxies fetched and acknowledged over mutual TLS). Then, from the host,
// against the controller's delivery Service: a client without credentials gets no snapshot
// and its acks are refused, and b's proxy credentials (read from b's Secret) can read b's
// snapshot but neither read nor acknowledge a's.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy/delivery"
)

const authNS = "gatecheck-delivery-auth"

func TestDeliveryAuthInCluster(t *testing.T) {
	ctx := context.Background()
	cfg, err := ctrl.GetConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	scheme, _ := Scheme()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: authNS}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), ns) })

	keyPEM := authServingSecret(t, ctx, c, "a-tls", "a.auth.example")
	keyJSON := base64.StdEncoding.EncodeToString(keyPEM) // how a snapshot carries it
	a := types.NamespacedName{Namespace: authNS, Name: "auth-a"}
	b := types.NamespacedName{Namespace: authNS, Name: "auth-b"}
	for _, gw := range []*gwv1.Gateway{
		{ObjectMeta: metav1.ObjectMeta{Namespace: authNS, Name: a.Name}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatecheck-reference", Listeners: []gwv1.Listener{{
			Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType,
			TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "a-tls"}}},
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: authNS, Name: b.Name}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatecheck-reference", Listeners: []gwv1.Listener{{
			Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType,
		}}}},
	} {
		if err := c.Create(ctx, gw); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	authWaitProgrammed(t, ctx, c, a)
	authWaitProgrammed(t, ctx, c, b)

	var svc corev1.Service
	if err := c.Get(ctx, types.NamespacedName{Namespace: "gatecheck-system", Name: "gatecheck-reference-controller"}, &svc); err != nil {
		t.Fatalf("controller Service: %v", err)
	}
	base := "https://" + net.JoinHostPort(svc.Spec.ClusterIP, "18000")
	serverName := svc.Name + "." + svc.Namespace + ".svc"
	t.Logf("delivery server %s (%s)", base, serverName)

	streamURL := func(gw types.NamespacedName, proxy string) string {
		return base + ir.SnapshotsPath + gw.Namespace + "/" + gw.Name + "?proxy=" + proxy
	}
	// get returns the status and the first line of the response (a snapshot on 200).
	get := func(hc *http.Client, u string) (int, string, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		line, _ := bufio.NewReaderSize(resp.Body, 1<<20).ReadString('\n')
		return resp.StatusCode, line, nil
	}
	ack := func(hc *http.Client, gw types.NamespacedName, proxy string, v int64) (int, string, error) {
		body, _ := json.Marshal(ir.Ack{Gateway: ir.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}, Proxy: proxy, Version: v})
		resp, err := hc.Post(base+ir.AcksPath, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(msg)), nil
	}

	// 1. No credentials: plain HTTP, and TLS without a client certificate.
	plainURL := strings.Replace(streamURL(a, "intruder"), "https://", "http://", 1)
	code, line, err := get(http.DefaultClient, plainURL)
	t.Logf("plain HTTP GET %s: status %d, err %v", plainURL, code, err)
	if code == http.StatusOK || strings.Contains(line, keyJSON) {
		t.Errorf("plain HTTP: got status %d with %d bytes; want no snapshot", code, len(line))
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	code, line, err = get(noCert, streamURL(a, "intruder"))
	t.Logf("TLS without a client certificate, GET: status %d, err %v", code, err)
	if err == nil || strings.Contains(line, keyJSON) {
		t.Errorf("TLS without a client certificate: got status %d; want the handshake refused", code)
	}
	code, msg, err := ack(noCert, a, "intruder", 1)
	t.Logf("TLS without a client certificate, ack: status %d %q, err %v", code, msg, err)
	if err == nil {
		t.Errorf("ack without a client certificate: got status %d; want the handshake refused", code)
	}

	// 2. Proxy credentials, as a proxy of the Gateway has them mounted from its Secret.
	credentials := func(gw types.NamespacedName) *http.Client {
		var sec corev1.Secret
		if err := c.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: "gatecheck-" + gw.Name + "-delivery"}, &sec); err != nil {
			t.Fatalf("certificate Secret of %s: %v", gw, err)
		}
		dir := t.TempDir()
		for k, v := range sec.Data {
			if err := os.WriteFile(filepath.Join(dir, k), v, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		hc, err := delivery.MutualTLS(dir, serverName)
		if err != nil {
			t.Fatal(err)
		}
		return hc
	}
	// a's own credentials get a's snapshot with a's key: the key goes to a's proxy.
	code, line, err = get(credentials(a), streamURL(a, "test-proxy-a"))
	if err != nil || code != http.StatusOK || !strings.Contains(line, keyJSON) {
		t.Fatalf("a's credentials reading a: got %d (%d bytes) %v; want 200 and a's snapshot with its key", code, len(line), err)
	}
	t.Logf("a's credentials reading a: status %d, snapshot of %d bytes with a's TLS key", code, len(line))
	bClient := credentials(b)
	// Positive control: b's credentials read b.
	code, line, err = get(bClient, streamURL(b, "test-proxy-b"))
	if err != nil || code != http.StatusOK || !strings.Contains(line, `"name":"auth-b"`) {
		t.Fatalf("b's credentials reading b: got %d %.120q %v; want 200 and b's snapshot", code, line, err)
	}
	t.Logf("b's credentials reading b: status %d, snapshot of %d bytes", code, len(line))
	code, line, err = get(bClient, streamURL(a, "test-proxy-b"))
	t.Logf("b's credentials reading a: status %d %q, err %v", code, strings.TrimSpace(line), err)
	if err != nil || code != http.StatusForbidden || strings.Contains(line, keyJSON) {
		t.Errorf("b's credentials reading a: got %d; want 403 and no key", code)
	}
	code, msg, err = ack(bClient, a, "test-proxy-b", 1)
	t.Logf("b's credentials acknowledging a: status %d %q, err %v", code, msg, err)
	if err != nil || code != http.StatusForbidden {
		t.Errorf("b's credentials acknowledging a: got %d; want 403", code)
	}
	// With b's stream open as test-proxy-b: an ack for a version never sent (the old server
	// let MaxInt64 pin a Gateway) is refused; the version sent is accepted.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, streamURL(b, "test-proxy-b"), nil)
	resp, err := bClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("b's stream: %v %v", err, resp)
	}
	defer resp.Body.Close()
	first, err := bufio.NewReaderSize(resp.Body, 1<<20).ReadBytes('\n')
	var sent ir.Update
	if err != nil || json.Unmarshal(first, &sent) != nil {
		t.Fatalf("b's stream: first line %q: %v", first, err)
	}
	code, msg, err = ack(bClient, b, "test-proxy-b", 1<<62)
	t.Logf("ack of a version never sent (stream open): status %d %q, err %v", code, msg, err)
	if err != nil || code != http.StatusConflict {
		t.Errorf("ack of a version never sent: got %d; want 409", code)
	}
	code, msg, err = ack(bClient, b, "test-proxy-b", sent.Version)
	t.Logf("ack of the version sent, %d: status %d %q, err %v", sent.Version, code, msg, err)
	if err != nil || code != http.StatusNoContent {
		t.Errorf("ack of the version sent: got %d; want 204", code)
	}
	stop()
	// a stays Programmed: nothing above disturbed it.
	authWaitProgrammed(t, ctx, c, a)
}

// authWaitProgrammed waits up to 2 minutes for the Gateway's Programmed condition, printing
// progress.
func authWaitProgrammed(t *testing.T, ctx context.Context, c client.Client, key types.NamespacedName) {
	t.Helper()
	start := time.Now()
	last := time.Now()
	for {
		var gw gwv1.Gateway
		err := c.Get(ctx, key, &gw)
		cond := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		if err == nil && cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == gw.Generation {
			t.Logf("gateway %s Programmed after %v", key, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("gateway %s not Programmed after 2m: %v %+v", key, err, cond)
		}
		if time.Since(last) > 10*time.Second {
			t.Logf("waiting for gateway %s to be Programmed (%v so far): %+v", key, time.Since(start).Round(time.Second), cond)
			last = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// authServingSecret creates a kubernetes.io/tls Secret for host (self-signed) and returns its
// key PEM.
func authServingSecret(t *testing.T, ctx context.Context, c client.Client, name, host string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: authNS, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), corev1.TLSPrivateKeyKey: keyPEM}}
	if err := c.Create(ctx, s); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if err := c.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	return keyPEM
}

// TestNameClashInCluster: a Service named like a Gateway's proxy Service, not owned by it, is
// left alone and the Gateway reports the clash.
func TestNameClashInCluster(t *testing.T) {
	ctx := context.Background()
	cfg, err := ctrl.GetConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	scheme, _ := Scheme()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: authNS + "-clash"}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), ns) })
	theirs := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "gatecheck-clash", Labels: map[string]string{"app": "theirs"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 5432}}}}
	if err := c.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "clash"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatecheck-reference",
		Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
	if err := c.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		var g gwv1.Gateway
		_ = c.Get(ctx, client.ObjectKeyFromObject(gw), &g)
		p := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		if p != nil && p.Reason == NameConflict {
			t.Logf("after %v: Programmed=%s reason %s: %s", time.Since(start).Round(time.Millisecond), p.Status, p.Reason, p.Message)
			if p.Status != metav1.ConditionFalse {
				t.Errorf("Programmed: got %s; want False", p.Status)
			}
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("no %s condition after 1m: %+v", NameConflict, p)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var now corev1.Service
	if err := c.Get(ctx, client.ObjectKeyFromObject(theirs), &now); err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != theirs.ResourceVersion || len(now.OwnerReferences) != 0 || now.Spec.Ports[0].Port != 5432 {
		t.Errorf("their Service changed: resourceVersion %s -> %s, owners %v, ports %v", theirs.ResourceVersion, now.ResourceVersion, now.OwnerReferences, now.Spec.Ports)
	}
	// Deleting the Gateway leaves their Service too.
	if err := c.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := c.Get(ctx, client.ObjectKeyFromObject(theirs), &now); err != nil {
		t.Errorf("their Service after the Gateway was deleted: %v; want kept", err)
	}
}
