//go:build e2e

package cluster_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatecheck/gatecheck/cluster"
	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/cluster/internal/providers/host"
	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/pki"
)

const stateDir = "/var/lib/gatecheck/host"

// TestHostClusterEndToEnd brings the host cluster up from nothing, checks up is idempotent
// and recovers from a killed component, runs echo-backend behind a Service, a native-sidecar
// pod, tears down and checks nothing is left. Run as root:
//
//	go test -tags e2e ./cluster/... -run TestHostClusterEndToEnd -v -timeout 30m
func TestHostClusterEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the host cluster needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	p, err := cluster.New(cluster.Host, cluster.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}

	// From nothing: whatever an earlier run left goes first.
	if err := p.Down(ctx); err != nil {
		t.Fatalf("initial Down: %v", err)
	}
	assertNothingLeft(t)
	sysctlsBefore := sysctlsBeforeUp(t)

	start := time.Now()
	if err := p.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	upRecord(t, sysctlsBefore)
	t.Logf("BRING-UP: host cluster up (node Ready + default ServiceAccount) in %s", time.Since(start).Round(10*time.Millisecond))
	// On failure the cluster is left up for debugging (logs in /var/lib/gatecheck/host/logs);
	// the next run's initial Down clears it.

	// Up twice: the second call finds it up and returns fast without restarting anything.
	pidsBefore := pidFiles(t)
	again := time.Now()
	if err := p.Up(ctx); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if d := time.Since(again); d > 5*time.Second {
		t.Errorf("second Up took %s; want < 5s (already up)", d)
	}
	if after := pidFiles(t); fmt.Sprint(after) != fmt.Sprint(pidsBefore) {
		t.Errorf("second Up changed PIDs %v -> %v; want untouched", pidsBefore, after)
	}

	// A killed run: SIGKILL the API server and the scheduler, then Up must recover.
	for _, name := range []string{"kube-apiserver", "kube-scheduler"} {
		pid := pidsBefore[name]
		if pid == 0 {
			t.Fatalf("no PID recorded for %s", name)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", name, err)
		}
	}
	recover := time.Now()
	if err := p.Up(ctx); err != nil {
		t.Fatalf("Up after killed components: %v", err)
	}
	t.Logf("RECOVERY: up after killed components in %s", time.Since(recover).Round(10*time.Millisecond))
	st, err := p.Describe(ctx)
	if err != nil || !st.Up {
		t.Fatalf("Describe after recovery = %+v, %v; want up", st, err)
	}
	t.Logf("Kubernetes %s, kubeconfig %s", st.KubernetesVersion, p.Kubeconfig())

	cs := client(t, p.Kubeconfig())
	etcdRefusesClientsWithoutCertificate(ctx, t)
	loadEchoBackend(ctx, t, p, log)
	ns := namespace(ctx, t, cs)
	echoBehindService(ctx, t, cs, ns)
	sidecarStartOrder(ctx, t, cs, ns)
	guardRules(ctx, t, cs, ns)

	down := time.Now()
	if err := p.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	t.Logf("TEARDOWN: down in %s", time.Since(down).Round(10*time.Millisecond))
	assertNothingLeft(t)
	assertSysctls(t, sysctlsBefore)
	assertLockRootOnly(t)
	if err := p.Down(ctx); err != nil {
		t.Fatalf("second Down: %v", err)
	}
	assertNothingLeft(t)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func pidFiles(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(stateDir, "run", "*.pid"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)[0])
		out[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	return out
}

func client(t *testing.T, kubeconfig string) *kubernetes.Clientset {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func loadEchoBackend(ctx context.Context, t *testing.T, p cluster.Provider, log *slog.Logger) {
	t.Helper()
	spec := images.Default()[0]
	if spec.Name != "echo-backend" {
		t.Fatalf("first default image is %s; want echo-backend", spec.Name)
	}
	spec.Required = true
	start := time.Now()
	if _, err := cluster.BuildAndLoadImages(ctx, p, "", []images.Spec{spec}, log); err != nil {
		t.Fatalf("build and load echo-backend: %v", err)
	}
	t.Logf("echo-backend image built and loaded in %s", time.Since(start).Round(10*time.Millisecond))
}

func namespace(ctx context.Context, t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gatecheck-e2e-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The namespace's default ServiceAccount must exist before pods can be created in it.
	waitFor(ctx, t, "default ServiceAccount in "+ns.Name, time.Minute, func() error {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return ns.Name
}

func waitFor(ctx context.Context, t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	start := time.Now()
	next := start.Add(5 * time.Second)
	for {
		err := check()
		if err == nil {
			t.Logf("%s: ok after %s", what, time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			t.Fatalf("%s: gave up after %s: %v", what, time.Since(start).Round(time.Second), err)
		}
		if time.Now().After(next) {
			t.Logf("still waiting for %s (%s so far): %v", what, time.Since(start).Round(time.Second), err)
			next = time.Now().Add(5 * time.Second)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func echoBehindService(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	labels := map[string]string{"app": "echo"}
	replicas := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:            "echo",
					Image:           images.EchoBackendImage,
					ImagePullPolicy: corev1.PullNever,
					Args:            []string{"--mode=http", "--addr=:3000", "--backend=e2e"},
					Env: []corev1.EnvVar{
						{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					},
					Ports:          []corev1.ContainerPort{{ContainerPort: 3000}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(3000)}}, PeriodSeconds: 1},
				}}},
			},
		},
	}
	applied := time.Now()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(3000)}}},
	}
	svcObj, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	waitFor(ctx, t, "echo-backend Deployment pod Ready", 2*time.Minute, func() error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.PodIP != "" {
					pod = p
					return nil
				}
			}
		}
		return fmt.Errorf("%d pods, none Ready yet", len(pods.Items))
	})
	t.Logf("echo pod %s Ready %s after create, IP %s", pod.Name, time.Since(applied).Round(10*time.Millisecond), pod.Status.PodIP)

	get := func(url string) error {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: got %s; want 200 OK", url, resp.Status)
		}
		var echo struct {
			Pod       string `json:"pod"`
			Namespace string `json:"namespace"`
			Path      string `json:"path"`
		}
		if err := json.Unmarshal(body, &echo); err != nil {
			return fmt.Errorf("GET %s: body %q is not the JSON echo: %w", url, body, err)
		}
		if echo.Pod != pod.Name || echo.Namespace != ns || echo.Path != "/e2e" {
			return fmt.Errorf("GET %s: got pod=%q namespace=%q path=%q; want %q %q /e2e", url, echo.Pod, echo.Namespace, echo.Path, pod.Name, ns)
		}
		return nil
	}
	waitFor(ctx, t, "echo via pod IP "+pod.Status.PodIP, 30*time.Second, func() error {
		return get("http://" + net.JoinHostPort(pod.Status.PodIP, "3000") + "/e2e")
	})
	waitFor(ctx, t, "echo via ClusterIP "+svcObj.Spec.ClusterIP, 30*time.Second, func() error {
		return get("http://" + net.JoinHostPort(svcObj.Spec.ClusterIP, "80") + "/e2e")
	})

	// The same pod behind a LoadBalancer Service: MetalLB's controller assigns an address
	// from the pool and kube-proxy answers it on this machine (no speaker runs).
	lb := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-lb", Namespace: ns},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(3000)}}},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, lb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, pool, _ := net.ParseCIDR(lbPool)
	var lbIP string
	waitFor(ctx, t, "LoadBalancer address for Service echo-lb", time.Minute, func() error {
		s, err := cs.CoreV1().Services(ns).Get(ctx, "echo-lb", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if ip := net.ParseIP(in.IP); ip != nil && pool.Contains(ip) {
				lbIP = in.IP
				return nil
			}
		}
		return fmt.Errorf("status.loadBalancer %+v; want an address in %s", s.Status.LoadBalancer, lbPool)
	})
	waitFor(ctx, t, "echo via LoadBalancer address "+lbIP, 30*time.Second, func() error {
		return get("http://" + net.JoinHostPort(lbIP, "80") + "/e2e")
	})
}

// lbPool is the host cluster's MetalLB pool.
const lbPool = "10.0.1.0/24"

// sidecarStartOrder runs echo-backend's lifecycle mode as a native sidecar (an init
// container with restartPolicy Always and a startup probe) and a main container, and reads
// the millisecond-stamped events each logs: the main container must start only after the
// sidecar reported started.
func sidecarStartOrder(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	always := corev1.ContainerRestartPolicyAlways
	mount := []corev1.VolumeMount{{Name: "events", MountPath: "/events"}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sidecar-order", Namespace: ns},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "events", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{{
				Name: "sidecar", Image: images.EchoBackendImage, ImagePullPolicy: corev1.PullNever,
				RestartPolicy: &always,
				Args:          []string{"--mode=lifecycle", "--name=sidecar", "--events-file=/events/log", "--addr=:8081", "--admin-addr=", "--startup-delay=1500ms"},
				VolumeMounts:  mount,
				StartupProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/startup", Port: intstr.FromInt32(8081)}},
					PeriodSeconds: 1, FailureThreshold: 30,
				},
			}},
			Containers: []corev1.Container{{
				Name: "main", Image: images.EchoBackendImage, ImagePullPolicy: corev1.PullNever,
				Args:         []string{"--mode=lifecycle", "--name=main", "--events-file=/events/log", "--addr=:8082", "--admin-addr="},
				VolumeMounts: mount,
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "sidecar pod Ready", 2*time.Minute, func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("phase %s", p.Status.Phase)
	})
	events := map[string]int64{} // "container event" -> unix ms
	var lines []string
	for _, c := range []string{"sidecar", "main"} {
		raw, err := cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: c}).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs of %s: %v", c, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 4 {
				continue
			}
			ms, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				continue
			}
			key := f[2] + " " + f[3]
			if _, seen := events[key]; !seen {
				events[key] = ms
			}
			lines = append(lines, sc.Text())
		}
	}
	t.Logf("sidecar pod events:\n%s", strings.Join(lines, "\n"))
	sidecarStarted, ok1 := events["sidecar started"]
	mainStarting, ok2 := events["main starting"]
	if !ok1 || !ok2 {
		t.Fatalf("events %v; want 'sidecar started' and 'main starting'", events)
	}
	if mainStarting < sidecarStarted {
		t.Errorf("main starting at %d ms, sidecar started at %d ms; want main after the sidecar's startup probe passed", mainStarting, sidecarStarted)
	} else {
		t.Logf("START ORDER: sidecar started, then main starting %d ms later", mainStarting-sidecarStarted)
	}
}

// guardRules checks that traffic from the service range (host side) and the pod range (from
// a pod) towards the uplink is rejected on the spot rather than leaving the machine.
func guardRules(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	// An unallocated ClusterIP: no kube-proxy rule, so only the guard stops it at the uplink.
	_, err := net.DialTimeout("tcp", "10.0.0.250:80", 3*time.Second)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dial unallocated service IP 10.0.0.250:80 from the host: got %v; want connection refused by the guard", err)
	}
	// A pool address no Service holds: likewise only the guard stops it.
	_, err = net.DialTimeout("tcp", "10.0.1.250:80", 3*time.Second)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dial unassigned load balancer IP 10.0.1.250:80 from the host: got %v; want connection refused by the guard", err)
	}
	// From a pod to an off-machine address (TEST-NET-3, routed via the default route).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "guard-probe", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "probe", Image: images.EchoBackendImage, ImagePullPolicy: corev1.PullNever,
				Args: []string{"--mode=lifecycle", "--name=probe", "--addr=", "--admin-addr=", "--outbound-url=http://203.0.113.1/", "--outbound-timeout=5s", "--exit-after=1ms"},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "guard probe pod finished", time.Minute, func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	raw, err := cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var outcome string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, " outbound-") {
			outcome = line
		}
	}
	if !strings.Contains(outcome, "outbound-fail") || !strings.Contains(outcome, "refused") {
		t.Errorf("pod -> 203.0.113.1: got %q; want outbound-fail with connection refused (guard REJECT)", outcome)
	} else {
		t.Logf("GUARD: %s", outcome)
	}
}

// assertNothingLeft checks no cluster process, mount, netns, bridge or KUBE-/CNI- chain
// remains.
func assertNothingLeft(t *testing.T) {
	t.Helper()
	for _, l := range cluster.HostLeftovers() {
		t.Errorf("left after teardown: %s", l)
	}
}

// sysctls up sets for pod traffic.
var sysctls = []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"}

// sysctlsBeforeUp reads the sysctls up changes. ip_forward on is turned off first (and back
// on when the test ends), so up must change it and down must put it back to off: with it
// already on, as it usually is on a machine that ran a cluster, a restore would go unseen.
func sysctlsBeforeUp(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range sysctls {
		data, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			continue // br_netfilter not loaded yet: up loads it, the value before is the module's default
		}
		out[k] = strings.TrimSpace(string(data))
	}
	if out["net/ipv4/ip_forward"] == "1" {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644); err != nil {
			t.Fatalf("turn off net.ipv4.ip_forward for the restore check: %v", err)
		}
		t.Cleanup(func() { _ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) })
		out["net/ipv4/ip_forward"] = "0"
	}
	return out
}

// upRecord checks up recorded what it changed: the record is root's only and holds
// ip_forward's value before up.
func upRecord(t *testing.T, before map[string]string) {
	t.Helper()
	path := filepath.Join(stateDir, host.ChangesFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("record of machine changes after up: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v; want 0600", path, st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	var rec struct {
		Sysctls map[string]string `json:"sysctls"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if got := rec.Sysctls["net/ipv4/ip_forward"]; got != before["net/ipv4/ip_forward"] {
		t.Errorf("%s records ip_forward's old value %q; want %q", path, got, before["net/ipv4/ip_forward"])
	}
	t.Logf("RECORD after up: %s", strings.Join(strings.Fields(string(data)), " "))
	assertLockRootOnly(t)
}

func assertSysctls(t *testing.T, before map[string]string) {
	t.Helper()
	for k, want := range before {
		data, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			t.Errorf("read sysctl %s after down: %v", k, err)
			continue
		}
		if got := strings.TrimSpace(string(data)); got != want {
			t.Errorf("sysctl %s after down = %s; want %s, its value before up", strings.ReplaceAll(k, "/", "."), got, want)
		}
	}
	t.Logf("SYSCTLS after down: %v (as before up)", before)
}

func assertLockRootOnly(t *testing.T) {
	t.Helper()
	lock := filepath.Join(stateDir, "lock")
	st, err := os.Stat(lock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v; want 0600 (anyone who can open it can hold up cluster up/down)", lock, st.Mode().Perm())
	}
}

// etcdRefusesClientsWithoutCertificate: etcd answers only clients with a certificate from
// its own CA. Plain HTTP, TLS without a certificate and TLS with the cluster admin's
// certificate (the cluster CA, not etcd's) can neither read nor write; the API server's etcd
// client certificate can read (the control that shows the requests would work).
func etcdRefusesClientsWithoutCertificate(ctx context.Context, t *testing.T) {
	t.Helper()
	pkiDir := filepath.Join(stateDir, "pki")
	caPEM, err := os.ReadFile(filepath.Join(pkiDir, pki.EtcdCACert))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	keyPair := func(cert, key string) []tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, cert), filepath.Join(pkiDir, key))
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	rangeDefault := `{"key":"` + b64("/registry/namespaces/default") + `"}`
	intruder := "/registry/gatecheck-e2e-intruder"
	put := `{"key":"` + b64(intruder) + `","value":"` + b64("x") + `"}`
	post := func(client *http.Client, url, body string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(b), nil
	}
	tlsClient := func(certs []tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}
	plain := &http.Client{Timeout: 5 * time.Second}

	refused := []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"plain HTTP", plain, "http://127.0.0.1:2379"},
		{"TLS without a client certificate", tlsClient(nil), "https://127.0.0.1:2379"},
		{"TLS with the cluster admin certificate (cluster CA)", tlsClient(keyPair(pki.AdminCert, pki.AdminKey)), "https://127.0.0.1:2379"},
	}
	for _, r := range refused {
		for _, op := range []struct{ path, body string }{{"/v3/kv/range", rangeDefault}, {"/v3/kv/put", put}} {
			code, body, err := post(r.client, r.url+op.path, op.body)
			if err == nil && code == http.StatusOK {
				t.Errorf("ETCD: %s POST %s: got 200 %s; want refused", r.name, op.path, body)
				continue
			}
			why := fmt.Sprint(err)
			if err == nil {
				why = fmt.Sprintf("%d %s", code, strings.TrimSpace(body))
			}
			t.Logf("ETCD: %s POST %s%s refused: %s", r.name, r.url, op.path, why)
		}
	}
	apiserver := tlsClient(keyPair(pki.APIServerEtcdCert, pki.APIServerEtcdKey))
	code, body, err := post(apiserver, "https://127.0.0.1:2379/v3/kv/range", rangeDefault)
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"count":"1"`) {
		t.Errorf("ETCD: API server's etcd client certificate POST /v3/kv/range /registry/namespaces/default: got %d %s %v; want 200 with count 1 (the control: this request works with a certificate)", code, body, err)
	} else {
		t.Logf("ETCD: control: API server's etcd client certificate reads /registry/namespaces/default (200, count 1)")
	}
	code, body, err = post(apiserver, "https://127.0.0.1:2379/v3/kv/range", `{"key":"`+b64(intruder)+`"}`)
	if err != nil || code != http.StatusOK || strings.Contains(body, `"kvs"`) {
		t.Errorf("ETCD: %s after the refused puts: got %d %s %v; want 200 without kvs", intruder, code, body, err)
	}
}
