package host

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/pki"
)

// restConfig is the admin kubeconfig's client config, with a 30 s request timeout.
func restConfig(kubeconfig string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	rc.Timeout = 30 * time.Second
	return rc, nil
}

func newClient(kubeconfig string, timeout time.Duration) (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	rc.Timeout = timeout
	// The bring-up polls fast; the default client-side limiter would slow it.
	rc.QPS, rc.Burst = 100, 200
	return kubernetes.NewForConfig(rc)
}

func readyz(ctx context.Context, cs kubernetes.Interface) error {
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err == nil {
		return nil
	}
	// The body lists every check; only the failing ones ("[-]...") say anything.
	var failing []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "[-]") {
			failing = append(failing, strings.TrimPrefix(line, "[-]"))
		}
	}
	if len(failing) > 0 {
		return fmt.Errorf("/readyz failing: %s", strings.Join(failing, "; "))
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Errorf("/readyz: %w (%s)", err, body)
}

func nodeReady(ctx context.Context, cs kubernetes.Interface, name string) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s Ready=%s: %s", name, c.Status, c.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", name)
}

func defaultServiceAccount(ctx context.Context, cs kubernetes.Interface) error {
	_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
	return err
}

func serverVersion(cs kubernetes.Interface) (string, error) {
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// etcdClient authenticates to etcd with the health-check client certificate from etcd's CA
// (etcd requires one on every request, /health included) and trusts only that CA.
func etcdClient(pkiDir string) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, pki.EtcdHealthcheckCert), filepath.Join(pkiDir, pki.EtcdHealthcheckKey))
	if err != nil {
		return nil, fmt.Errorf("etcd health-check client certificate in %s: %w (the next `gatecheck cluster up` regenerates it)", pkiDir, err)
	}
	caPath := filepath.Join(pkiDir, pki.EtcdCACert)
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("etcd CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("etcd CA %s holds no PEM certificate", caPath)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12,
	}}}, nil
}

func etcdHealthy(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var h struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Health != "true" {
		return fmt.Errorf("etcd /health: %s %s", resp.Status, body)
	}
	return nil
}
