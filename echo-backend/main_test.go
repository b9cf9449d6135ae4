package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/lifecycle"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/udpecho"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds this command once per test run, so tests exercise the real process:
// flags, signals and exit codes.
func binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "echo-backend-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "echo-backend")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build -o %s .: %w\n%s", binPath, err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is a running echo-backend.
type proc struct {
	cmd    *exec.Cmd
	stdout *lockedBuf
	addrs  chan [2]string // "listening" or "admin API listening", addr
	done   chan error
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listenRE = regexp.MustCompile(`msg="?(listening|admin API listening)"? .*?\baddr=(\S+)`)

func startProc(t testing.TB, env []string, args ...string) (*proc, string, string) {
	t.Helper()
	return startProcOut(t, nil, env, args...)
}

// startProcOut is startProc with the child's stdout sent to stdout (e.g. /dev/null) instead
// of a buffer the test can read.
func startProcOut(t testing.TB, stdout *os.File, env []string, args ...string) (*proc, string, string) {
	t.Helper()
	p := &proc{stdout: &lockedBuf{}, addrs: make(chan [2]string, 2), done: make(chan error, 1)}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.stdout
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				p.addrs <- [2]string{m[1], m[2]}
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	var addr, admin string
	timeout := time.After(20 * time.Second)
	for addr == "" || (admin == "" && !slices.Contains(args, "--admin-addr=")) {
		select {
		case a := <-p.addrs:
			if a[0] == "listening" {
				addr = a[1]
			} else {
				admin = a[1]
			}
		case err := <-p.done:
			t.Fatalf("echo-backend %v exited before listening: %v", args, err)
		case <-timeout:
			t.Fatalf("echo-backend %v: waited 20s for its listening lines", args)
		}
	}
	return p, addr, admin
}

// getEcho GETs url and decodes the echo.
func getEcho(t testing.TB, url string) (int, echo.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echo.Response
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("GET %s: decode the echo: %v", url, err)
	}
	return resp.StatusCode, e
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t testing.TB) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatal("echo-backend did not exit within 20s of SIGTERM")
		return -1
	}
}

func TestBadFlagsExit2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantMsg string
	}{
		{name: "unknown mode", args: []string{"--mode=sctp"}, wantMsg: `flag --mode="sctp"`},
		{name: "unknown flag", args: []string{"--nope"}, wantMsg: "flag provided but not defined: -nope"},
		{name: "positional", args: []string{"extra"}, wantMsg: "unexpected arguments"},
		{name: "bad duration", args: []string{"--startup-delay=soon"}, wantMsg: "invalid value"},
		{name: "negative duration", args: []string{"--mode=lifecycle", "--termination-delay=-1s"}, wantMsg: "flag --termination-delay=-1s"},
		{name: "exit code range", args: []string{"--mode=lifecycle", "--exit-code=300"}, wantMsg: "flag --exit-code=300: want 0-255"},
		{name: "tls half", args: []string{"--tls-cert=x.pem"}, wantMsg: "set both or neither"},
		{name: "tls on tcp", args: []string{"--mode=tcp", "--tls-cert=x", "--tls-key=y"}, wantMsg: "mode tcp does not serve TLS"},
		{name: "records", args: []string{"--records=0"}, wantMsg: "flag --records=0"},
		{name: "response status range", args: []string{"--response-status=99"}, wantMsg: "flag --response-status=99: want 200-599"},
		{name: "response delay on tcp", args: []string{"--mode=tcp", "--response-delay=1s"}, wantMsg: "only mode http uses them, not tcp"},
		{name: "forward-proxy without upstream", args: []string{"--mode=forward-proxy"}, wantMsg: "mode forward-proxy needs it"},
		{name: "upstream on http", args: []string{"--upstream=http://127.0.0.1:1"}, wantMsg: "only it uses it (mode http)"},
		{name: "relative upstream", args: []string{"--mode=forward-proxy", "--upstream=10.0.0.7:8080"}, wantMsg: "want an absolute URL"},
		{name: "missing cert file", args: []string{"--addr=127.0.0.1:0", "--admin-addr=", "--tls-cert=/nonexistent.pem", "--tls-key=/nonexistent.key"}, wantMsg: "load --tls-cert=/nonexistent.pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(binary(t), tc.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("echo-backend %v: got %v; want exit code 2\n%s", tc.args, err, out)
			}
			if !strings.Contains(string(out), tc.wantMsg) {
				t.Errorf("echo-backend %v: output %q; want it to contain %q", tc.args, out, tc.wantMsg)
			}
		})
	}
}

func TestHTTPModeProcess(t *testing.T) {
	t.Parallel()
	p, addr, admin := startProc(t, []string{"BACKEND=b1", "POD_NAME=pod-1", "NAMESPACE=ns-1", "SERVICE_NAME=svc-1"},
		"--addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0", "--records=5")
	// An in-flight request must complete across SIGTERM.
	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow?delay=400ms&request-id=slow")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	_, e := getEcho(t, "http://"+addr+"/x?request-id=r1")
	if e.Backend != "b1" || e.Pod != "pod-1" || e.Namespace != "ns-1" || e.Service != "svc-1" || e.RequestID != "r1" {
		t.Errorf("echo identity: got %+v; want b1/pod-1/ns-1/svc-1 and request id r1", e)
	}
	var page records.Page
	resp, err := http.Get("http://" + admin + "/records?id=r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(page.Records) != 1 || page.Records[0].Path != "/x" || page.Capacity != 5 {
		t.Errorf("admin /records?id=r1: got %+v; want one record for /x, capacity 5", page)
	}
	time.Sleep(100 * time.Millisecond) // let the slow request arrive
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d; want 0", code)
	}
	if code := <-slow; code != 200 {
		t.Errorf("in-flight request across SIGTERM: got status %d; want 200", code)
	}
	if !strings.Contains(p.stdout.String(), "Echoing back request made to /x?request-id=r1 to client") {
		t.Errorf("stdout: got %q; want the request log line for /x", p.stdout.String())
	}
}

func TestGRPCModeProcess(t *testing.T) {
	t.Parallel()
	p, addr, _ := startProc(t, []string{"BACKEND=g1"}, "--mode=grpc", "--addr=127.0.0.1:0", "--admin-addr=")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := echopb.NewEchoClient(conn).Unary(ctx, &echopb.EchoRequest{RequestId: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetIdentity().GetBackend() != "g1" || resp.GetRequestId() != "g" {
		t.Errorf("grpc echo: got backend %q id %q; want g1, g", resp.GetIdentity().GetBackend(), resp.GetRequestId())
	}
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: got %v, %v; want SERVING", h, err)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d; want 0", code)
	}
}

func TestTCPModeProcess(t *testing.T) {
	t.Parallel()
	p, addr, _ := startProc(t, []string{"BACKEND=t1"}, "--mode=tcp", "--addr=127.0.0.1:0", "--admin-addr=")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	g, err := tcpecho.ReadGreeting(br)
	if err != nil || g.Backend != "t1" {
		t.Fatalf("greeting: got %+v, %v; want backend t1", g, err)
	}
	io.WriteString(c, "ping")
	c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(br)
	c.Close()
	if string(got) != "ping" {
		t.Errorf("echo: got %q; want ping", got)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d; want 0", code)
	}
}

func TestUDPModeProcess(t *testing.T) {
	t.Parallel()
	p, addr, _ := startProc(t, []string{"BACKEND=u1"}, "--mode=udp", "--addr=127.0.0.1:0", "--admin-addr=")
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(udpecho.Request("f", 3, 0))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer from udp mode: %v", err)
	}
	a, err := udpecho.ParseAnswer(buf[:n])
	if err != nil || a.Backend != "u1" || a.Seq != 3 || a.Flow != "f" {
		t.Fatalf("answer: got %+v, %v; want backend u1, flow f, seq 3", a, err)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d; want 0", code)
	}
}

func TestLifecycleModeProcess(t *testing.T) {
	t.Parallel()
	events := filepath.Join(t.TempDir(), "events")
	p, addr, _ := startProc(t, []string{"LIFECYCLE_NAME=sidecar"}, "--mode=lifecycle", "--addr=127.0.0.1:0", "--admin-addr=",
		"--events-file="+events, "--termination-delay=200ms", "--exit-code=0", "--event=hello")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("waited 10s for /ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code: got %d; want 0", code)
	}
	f, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := lifecycle.ReadEvents(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs {
		names = append(names, e.Container+":"+e.Name)
	}
	want := "sidecar:starting sidecar:started sidecar:ready sidecar:hello sidecar:sigterm sidecar:exiting"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("events: got %q; want %q", got, want)
	}
	if !strings.Contains(p.stdout.String(), "sidecar exiting code=0 reason=sigterm") {
		t.Errorf("stdout: got %q; want the exiting event", p.stdout.String())
	}
}

// The forward-proxy mode stands in for a mesh sidecar: a request to it reaches an echo-backend
// behind it, and its stdout carries the lifecycle events the sidecar suite reads.
func TestForwardProxyModeProcess(t *testing.T) {
	t.Parallel()
	_, upstream, _ := startProc(t, []string{"BACKEND=target"}, "--addr=127.0.0.1:0", "--admin-addr=")
	p, addr, _ := startProc(t, nil, "--mode=forward-proxy", "--name=proxy", "--addr=127.0.0.1:0", "--admin-addr=", "--upstream=http://"+upstream)
	code, e := getEcho(t, "http://"+addr+"/first-request?request-id=r1")
	if code != 200 || e.Backend != "target" || e.RequestID != "r1" || e.Path != "/first-request?request-id=r1" {
		t.Errorf("through the proxy: got %d %+v; want 200 from backend target for /first-request, request id r1", code, e)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d; want 0", code)
	}
	evs, err := lifecycle.ReadEvents(strings.NewReader(p.stdout.String()))
	if err != nil {
		t.Fatalf("stdout %q: %v", p.stdout.String(), err)
	}
	var names []string
	for _, e := range evs {
		names = append(names, e.Container+":"+e.Name)
	}
	if got, want := strings.Join(names, " "), "proxy:starting proxy:started proxy:exiting"; got != want {
		t.Errorf("events: got %q; want %q", got, want)
	}
}
