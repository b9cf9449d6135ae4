package controller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// authFixture is a delivery server with two published Gateways, a (HTTPS, with a key) and b.
type authFixture struct {
	d        *Delivery
	ca       *CA
	srv      *httptest.Server
	a, b     types.NamespacedName
	va, vb   int64
	keyPEM   string
	keyJSON  string
	clientOf map[types.NamespacedName]*http.Client
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	f := &authFixture{d: NewDelivery(slog.New(slog.DiscardHandler), nil), ca: mustCA(t),
		a: types.NamespacedName{Namespace: "ns", Name: "a"}, b: types.NamespacedName{Namespace: "ns", Name: "b"},
		keyPEM: "-----BEGIN EC PRIVATE KEY-----\nsecret-of-a\n-----END EC PRIVATE KEY-----\n"}
	// The key as the snapshot's JSON carries it ([]byte: base64).
	f.keyJSON = base64.StdEncoding.EncodeToString([]byte(f.keyPEM))
	f.d.unknownWait = 100 * time.Millisecond
	f.srv = tlsDelivery(t, f.d, f.ca)
	t.Cleanup(f.srv.Close)
	sa := snap("a", 443)
	sa.Listeners[0].Protocol = ir.ProtocolHTTPS
	sa.Listeners[0].TLS = &ir.TLS{Certificates: []ir.Certificate{{CertPEM: []byte("cert"), KeyPEM: []byte(f.keyPEM)}}}
	var err error
	if f.va, err = f.d.store2(sa); err != nil {
		t.Fatal(err)
	}
	if f.vb, err = f.d.Publish(snap("b", 80)); err != nil {
		t.Fatal(err)
	}
	f.clientOf = map[types.NamespacedName]*http.Client{f.a: proxyClient(t, f.ca, f.a), f.b: proxyClient(t, f.ca, f.b)}
	return f
}

// get opens gw's stream with hc; it returns the status, and the first snapshot line on 200.
func (f *authFixture) get(t *testing.T, hc *http.Client, gw types.NamespacedName, proxy string) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+ir.SnapshotsPath+gw.Namespace+"/"+gw.Name+"?proxy="+proxy, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	return resp.StatusCode, line, err
}

func (f *authFixture) ack(t *testing.T, hc *http.Client, a ir.Ack) (int, string, error) {
	t.Helper()
	body, _ := json.Marshal(a)
	resp, err := hc.Post(f.srv.URL+ir.AcksPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// store2 publishes s through the validation-free path so a snapshot with a fake key can be used.
func (d *Delivery) store2(s *ir.Snapshot) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, _, err := d.store(types.NamespacedName{Namespace: s.Gateway.Namespace, Name: s.Gateway.Name}, s, nil)
	return v, err
}

// holdStream opens gw's stream as proxy and keeps it open until the test ends.
func (f *authFixture) holdStream(t *testing.T, gw types.NamespacedName, proxy string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+ir.SnapshotsPath+gw.Namespace+"/"+gw.Name+"?proxy="+proxy, nil)
	resp, err := f.clientOf[gw].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream of %s: got status %d; want 200", gw, resp.StatusCode)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
}

func TestDeliveryRefusesClientsWithoutItsCertificate(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	pool := f.ca.pool()
	// TLS that trusts the server but presents no certificate: the handshake fails.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: testServerName}}}
	// A certificate naming Gateway a, from a CA of the client's own making.
	other := mustCA(t)
	forged := proxyClient(t, other, f.a)
	forged.Transport.(*http.Transport).TLSClientConfig.VerifyConnection = nil // trust the real server anyway
	for name, hc := range map[string]*http.Client{"no certificate": noCert, "certificate of another CA": forged} {
		if code, body, err := f.get(t, hc, f.a, "intruder"); err == nil {
			t.Errorf("%s: stream of %s: got status %d %q; want a failed handshake", name, f.a, code, body)
		}
		if code, _, err := f.ack(t, hc, ir.Ack{Gateway: ir.NamespacedName{Namespace: "ns", Name: "a"}, Proxy: "intruder", Version: f.va}); err == nil {
			t.Errorf("%s: ack: got status %d; want a failed handshake", name, code)
		}
	}
	// Plain HTTP to the TLS port gets no snapshot either.
	resp, err := http.Get(strings.Replace(f.srv.URL, "https://", "http://", 1) + ir.SnapshotsPath + "ns/a?proxy=x")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), f.keyJSON) {
			t.Errorf("plain HTTP: got %d %q; want no snapshot", resp.StatusCode, b)
		}
	}
	// The handler itself, served without TLS by mistake, refuses too.
	plain := httptest.NewServer(f.d.Handler())
	defer plain.Close()
	resp, err = http.Get(plain.URL + ir.SnapshotsPath + "ns/a?proxy=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("handler without TLS: got %d; want 401", resp.StatusCode)
	}
	if ok, _ := f.d.AckState(f.a, []string{"intruder"}); ok {
		t.Errorf("an intruder's ack counted")
	}
}

func TestDeliveryServesOnlyTheCertificatesGateway(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	// Positive control: a's proxy gets a's snapshot, key included.
	code, line, err := f.get(t, f.clientOf[f.a], f.a, "proxy-a")
	if err != nil || code != http.StatusOK || !strings.Contains(line, f.keyJSON) {
		t.Fatalf("a's proxy reading a: got %d %q %v; want 200 with a's snapshot", code, line, err)
	}
	// b's proxy may not read a's snapshot (and so never sees a's key).
	code, body, err := f.get(t, f.clientOf[f.b], f.a, "proxy-b")
	if err != nil || code != http.StatusForbidden || strings.Contains(body, f.keyJSON) {
		t.Errorf("b's proxy reading a: got %d %q %v; want 403", code, body, err)
	}
	// Nor acknowledge for a, even with a stream of its own open.
	f.holdStream(t, f.b, "proxy-b")
	if code, body, err := f.ack(t, f.clientOf[f.b], ir.Ack{Gateway: ir.NamespacedName{Namespace: "ns", Name: "a"}, Proxy: "proxy-b", Version: f.va}); err != nil || code != http.StatusForbidden {
		t.Errorf("b's proxy acking a: got %d %q %v; want 403", code, body, err)
	}
	if ok, _ := f.d.AckState(f.a, []string{"proxy-b"}); ok {
		t.Errorf("b's ack for a counted")
	}
	// A certificate for a Gateway without published configuration: 404, and no state kept.
	ghost := types.NamespacedName{Namespace: "ns", Name: "ghost"}
	code, body, err = f.get(t, proxyClient(t, f.ca, ghost), ghost, "proxy-ghost")
	if err != nil || code != http.StatusNotFound {
		t.Errorf("unknown gateway: got %d %q %v; want 404", code, body, err)
	}
	if code, _, _ := f.ack(t, proxyClient(t, f.ca, ghost), ir.Ack{Gateway: ir.NamespacedName{Namespace: "ns", Name: "ghost"}, Proxy: "p", Version: 1}); code != http.StatusNotFound {
		t.Errorf("ack for unknown gateway: got %d; want 404", code)
	}
	f.d.mu.Lock()
	_, kept := f.d.gateways[ghost]
	f.d.mu.Unlock()
	if kept {
		t.Errorf("state was created for an unknown gateway")
	}
	// A stream opened before the Gateway's first publication (a controller restart) waits
	// for it instead of failing.
	late := types.NamespacedName{Namespace: "ns", Name: "late"}
	f.d.unknownWait = 5 * time.Second
	go func() { time.Sleep(200 * time.Millisecond); f.d.Publish(snap("late", 80)) }()
	start := time.Now()
	code, line, err = f.get(t, proxyClient(t, f.ca, late), late, "proxy-late")
	if err != nil || code != http.StatusOK || !strings.Contains(line, `"name":"late"`) {
		t.Errorf("stream opened before publication: got %d %q %v after %v; want 200 with the snapshot", code, line, err, time.Since(start))
	}
}

func TestDeliveryRefusesAcksNeverSent(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	hb := f.clientOf[f.b]
	ackB := func(proxy string, v int64) int {
		code, body, err := f.ack(t, hb, ir.Ack{Gateway: ir.NamespacedName{Namespace: "ns", Name: "b"}, Proxy: proxy, Version: v})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ack %s v%d: %d %s", proxy, v, code, strings.TrimSpace(body))
		return code
	}
	// No stream open: nothing was sent to this proxy.
	if code := ackB("proxy-b", f.vb); code != http.StatusConflict {
		t.Errorf("ack without a stream: got %d; want 409", code)
	}
	f.holdStream(t, f.b, "proxy-b")
	// A version never published (the MaxInt64 pin of the old server).
	if code := ackB("proxy-b", 1<<62); code != http.StatusConflict {
		t.Errorf("ack of a version never sent: got %d; want 409", code)
	}
	if code := ackB("Not_A_Pod", f.vb); code != http.StatusBadRequest {
		t.Errorf("ack with a malformed proxy name: got %d; want 400", code)
	}
	if code := ackB("proxy-b", f.vb); code != http.StatusNoContent {
		t.Errorf("ack of the version sent: got %d; want 204", code)
	}
	if ok, msg := f.d.AckState(f.b, []string{"proxy-b"}); !ok {
		t.Errorf("after a valid ack: not acked (%s)", msg)
	}
	// The pinned version must not have stuck: a new version is acknowledged normally.
	v2, _ := f.d.Publish(snap("b", 81))
	deadline := time.Now().Add(5 * time.Second)
	for ackB("proxy-b", v2) != http.StatusNoContent {
		if time.Now().After(deadline) {
			t.Fatalf("ack of version %d never accepted", v2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeliveryBoundsStreams(t *testing.T) {
	t.Parallel()
	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	gw := types.NamespacedName{Namespace: "ns", Name: "gw"}
	if err := d.streamOpened(gw, "p"); err == nil {
		t.Errorf("stream of an unpublished gateway: got nil; want an error")
	}
	if _, err := d.Publish(snap("gw", 80)); err != nil {
		t.Fatal(err)
	}
	for i := range maxStreams {
		if err := d.streamOpened(gw, "p"+strings.Repeat("x", i%3)); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	if err := d.streamOpened(gw, "one-more"); err == nil {
		t.Errorf("stream %d: got nil; want refused", maxStreams+1)
	}
}

func TestIdentityOf(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	gw := types.NamespacedName{Namespace: "team-a", Name: "web.example"}
	certPEM, keyPEM, err := ca.IssueProxy(gw)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := identityOf(pair.Leaf); err != nil || got != gw {
		t.Errorf("identityOf: got %v, %v; want %v", got, err, gw)
	}
	data := map[string][]byte{caCertKey: ca.CertPEM(), corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}
	if !ca.proxyCertCurrent(gw, data, time.Now()) {
		t.Errorf("freshly issued certificate: not current")
	}
	if ca.proxyCertCurrent(types.NamespacedName{Namespace: "team-a", Name: "other"}, data, time.Now()) {
		t.Errorf("certificate of another gateway: current; want not")
	}
	if ca.proxyCertCurrent(gw, data, time.Now().Add(leafValidity-renewBefore/2)) {
		t.Errorf("certificate within the renewal window: current; want not")
	}
	if mustCA(t).proxyCertCurrent(gw, data, time.Now()) {
		t.Errorf("certificate of another CA: current; want not")
	}
}
