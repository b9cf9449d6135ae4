// Command bench compares the reference proxy with nginx as reverse proxies to the same echo
// backend on loopback: same load (N keep-alive HTTP/1.1 connections, closed loop), runs
// alternated so machine noise hits both alike; it prints requests/s, p50 and p99 for each, the
// backend measured directly (the ceiling), and the ratios proxy/nginx.
//
// The backend and both proxies run as separate processes; this program re-executes itself
// with -role=backend and -role=proxy.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
)

func main() {
	role := flag.String("role", "", "internal: backend or proxy")
	addr := flag.String("addr", "", "internal: listen address for -role=backend")
	config := flag.String("config", "", "internal: snapshot file for -role=proxy")
	duration := flag.Duration("duration", 5*time.Second, "measured duration of each run")
	rounds := flag.Int("rounds", 2, "alternating rounds per target")
	conns := flag.Int("conns", 16, "keep-alive connections")
	nginxBin := flag.String("nginx", "nginx", "nginx binary")
	workers := flag.Int("nginx-workers", runtime.NumCPU(), "nginx worker_processes (the Go proxy uses GOMAXPROCS = CPUs)")
	flag.Parse()
	var err error
	switch *role {
	case "backend":
		err = runBackend(*addr)
	case "proxy":
		err = runProxy(*config)
	case "":
		err = drive(*duration, *rounds, *conns, *nginxBin, *workers)
	default:
		err = fmt.Errorf("-role %q: want backend or proxy", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runBackend(addr string) error {
	srv, err := echo.NewServer(echo.Options{Identity: identity.Identity{Backend: "bench"}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return srv.Serve(ln)
}

func runProxy(config string) error {
	// A proxy's live heap is small and its garbage is per-request; collecting less often
	// buys throughput for a few MB of memory. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	b, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var s ir.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode %s: %w", config, err)
	}
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := p.Apply(&s); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return p.Close(context.Background())
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200, printing progress every 2 s.
func waitHTTP(what, url string) error {
	start, last := time.Now(), time.Now()
	for {
		res, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %s", res.Status)
		}
		if time.Since(start) > 20*time.Second {
			return fmt.Errorf("%s at %s not ready after 20s: %w", what, url, err)
		}
		if time.Since(last) > 2*time.Second {
			fmt.Fprintf(os.Stderr, "waiting for %s at %s (%v so far): %v\n", what, url, time.Since(start).Round(time.Second), err)
			last = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type proc struct{ cmd *exec.Cmd }

func start(name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &proc{cmd}, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

const nginxConf = `worker_processes %d;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  upstream backend {
    server 127.0.0.1:%[3]d;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:%[4]d;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`

func drive(d time.Duration, rounds, conns int, nginxBin string, workers int) error {
	nginxPath, err := exec.LookPath(nginxBin)
	if err != nil {
		return fmt.Errorf("nginx binary %q not found (install it: apt-get install -y nginx-light): %w", nginxBin, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "proxy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	backendPort, proxyPort, nginxPort := ports[0], ports[1], ports[2]

	be, err := start(self, "-role=backend", "-addr=127.0.0.1:"+strconv.Itoa(backendPort))
	if err != nil {
		return err
	}
	defer be.stop()
	snap := ir.Snapshot{Version: 1, Gateway: ir.NamespacedName{Namespace: "bench", Name: "gw"}, Listeners: []ir.Listener{{
		Name: "http", Port: int32(proxyPort), Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
			RouteMeta: ir.RouteMeta{Namespace: "bench", Name: "route"},
			Rules: []ir.HTTPRule{{Backends: []ir.Backend{{Name: "bench/echo:80", Weight: 1,
				Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(backendPort)}}}}}}}}}}}
	b, _ := json.Marshal(snap)
	cfg := filepath.Join(dir, "snapshot.json")
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		return err
	}
	px, err := start(self, "-role=proxy", "-config="+cfg)
	if err != nil {
		return err
	}
	defer px.stop()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, workers, dir, backendPort, nginxPort), 0o600); err != nil {
		return err
	}
	ng, err := start(nginxPath, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return err
	}
	defer ng.stop()
	targets := []struct{ name, url string }{
		{"backend direct", fmt.Sprintf("http://127.0.0.1:%d/bench", backendPort)},
		{"gatecheck proxy", fmt.Sprintf("http://127.0.0.1:%d/bench", proxyPort)},
		{"nginx " + nginxVersion(nginxPath), fmt.Sprintf("http://127.0.0.1:%d/bench", nginxPort)},
	}
	for _, t := range targets {
		if err := waitHTTP(t.name, t.url); err != nil {
			return err
		}
	}
	fmt.Printf("loopback, %d keep-alive HTTP/1.1 connections, closed loop, %v per run, %d alternating rounds, %d CPUs, nginx workers %d\n",
		conns, d, rounds, runtime.NumCPU(), workers)
	type agg struct {
		n    int64
		dur  time.Duration
		hist *hdrhistogram.Histogram
		errs int64
	}
	res := make([]agg, len(targets))
	for i := range res {
		res[i].hist = hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	}
	for r := 1; r <= rounds; r++ {
		for i, t := range targets {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s for %v\n", r, rounds, t.name, d)
			n, errs, h := load(t.url, conns, 500*time.Millisecond, d)
			res[i].n += n
			res[i].errs += errs
			res[i].dur += d
			res[i].hist.Merge(h)
		}
	}
	fmt.Printf("%-22s %12s %10s %10s %8s\n", "target", "req/s", "p50", "p99", "errors")
	rps := make([]float64, len(targets))
	for i, t := range targets {
		rps[i] = float64(res[i].n) / res[i].dur.Seconds()
		fmt.Printf("%-22s %12.0f %10v %10v %8d\n", t.name, rps[i],
			time.Duration(res[i].hist.ValueAtQuantile(50))*time.Microsecond, time.Duration(res[i].hist.ValueAtQuantile(99))*time.Microsecond, res[i].errs)
	}
	p50 := func(i int) float64 { return float64(res[i].hist.ValueAtQuantile(50)) }
	p99 := func(i int) float64 { return float64(res[i].hist.ValueAtQuantile(99)) }
	fmt.Printf("ratio gatecheck/nginx: throughput %.2fx, p50 latency %.2fx, p99 latency %.2fx\n", rps[1]/rps[2], p50(1)/p50(2), p99(1)/p99(2))
	if res[1].errs+res[2].errs > 0 {
		return errors.New("some requests failed; the figures above are not comparable")
	}
	return nil
}

func nginxVersion(path string) string {
	out, _ := exec.Command(path, "-v").CombinedOutput()
	var v string
	fmt.Sscanf(string(out), "nginx version: nginx/%s", &v)
	return v
}

// load runs conns closed-loop clients, each on its own keep-alive connection, for warm+d and
// records latencies (microseconds) of the requests that start after warm.
func load(url string, conns int, warm, d time.Duration) (int64, int64, *hdrhistogram.Histogram) {
	var mu sync.Mutex
	total := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	var n, errs int64
	var wg sync.WaitGroup
	begin := time.Now()
	measureFrom, end := begin.Add(warm), begin.Add(warm+d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			var myN, myErrs int64
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				res, err := c.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					myErrs++
					continue
				}
				myN++
				h.RecordValue(time.Since(t0).Microseconds())
			}
			mu.Lock()
			total.Merge(h)
			n += myN
			errs += myErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n, errs, total
}
