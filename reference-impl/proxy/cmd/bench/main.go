// Command bench compares the reference proxy with nginx (and Traefik's proxy, when gatecheck
// has built it) as reverse proxies to the same echo backend on loopback: same load (N
// keep-alive HTTP/1.1 connections per target, closed loop). Each round gives every target the
// same time in slices taken in turn, the order rotating from slice to slice, so that noise
// from a shared machine hits them alike; the machine's load average is printed around
// every round. It prints, per round and in total, requests/s, p50 and p99, the CPU time each
// proxy's processes used per request, and the ratios against nginx of the same round. Beside
// the proxy's CPU per request it prints the echo backend's and the load generator's, and the
// share of the machine's CPU time left idle or stolen: all of them share the CPUs, so the
// throughput is about the busy CPU time over all CPU time used per request, and a proxy
// can lose throughput by leaving the CPUs idle as well as by using more of them.
//
// The backend and the reference proxy run as separate processes (this program re-executes
// itself with -role=backend and -role=proxy; the proxy role builds the proxy exactly as
// reference-impl/cmd/proxy does, with its GOGC default). A second reference proxy with
// net/http's Transport for every upstream request (Options.StdHTTP1Upstream) is measured
// alongside, the numbers behind keeping the HTTP/1 fast path (h1fast.go).
package main

import (
	"bytes"
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
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
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
	std := flag.Bool("std", false, "internal: -role=proxy with net/http's Transport for every upstream request")
	stdServer := flag.Bool("std-server", false, "internal: -role=proxy with net/http's server for every request")
	cpuProfile := flag.String("cpuprofile", "", "write the reference proxy's CPU profile (fast path) to this file")
	duration := flag.Duration("duration", 5*time.Second, "measured time per target and round")
	rounds := flag.Int("rounds", 3, "alternating rounds")
	slices := flag.Int("slices", 5, "slices per target and round, taken in turn")
	conns := flag.Int("conns", 16, "keep-alive connections")
	nginxBin := flag.String("nginx", "nginx", "nginx binary")
	workers := flag.Int("nginx-workers", runtime.NumCPU(), "nginx worker_processes (the Go proxies use GOMAXPROCS = CPUs)")
	traefikBin := flag.String("traefik", defaultTraefik(), `Traefik binary ("" or "none": skip Traefik)`)
	stdVariant := flag.Bool("variants", true, "also measure the reference proxy with net/http's Transport upstream (no h1 fast path) and with net/http's server (no h1Server)")
	ab := flag.String("ab", "", "also measure the reference proxy of another build of this bench (its -role=proxy), e.g. one built from main, to compare a change in the same run")
	flag.Parse()
	var err error
	switch *role {
	case "backend":
		err = runBackend(*addr)
	case "proxy":
		err = runProxy(*config, *cpuProfile, proxy.Options{StdHTTP1Upstream: *std, StdHTTP1Server: *stdServer})
	case "":
		err = drive(opts{d: *duration, rounds: *rounds, conns: *conns, nginx: *nginxBin, workers: *workers,
			traefik: *traefikBin, std: *stdVariant, cpuProfile: *cpuProfile, slices: max(1, *slices), ab: *ab})
	default:
		err = fmt.Errorf("-role %q: want backend or proxy", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// defaultTraefik is the Traefik binary gatecheck builds for its Traefik image
// (cluster/images/traefik.go caches it under <cache>/images/tools/traefik/<version>/), or "".
func defaultTraefik() string {
	cache := os.Getenv("GATECHECK_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache", "gatecheck")
	}
	m, _ := filepath.Glob(filepath.Join(cache, "images", "tools", "traefik", "*", "traefik"))
	if len(m) == 0 {
		return ""
	}
	sort.Strings(m)
	return m[len(m)-1]
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

// runProxy serves the snapshot the way reference-impl/cmd/proxy does (same GOGC default, same
// Options but the bind address and, for the variants, the HTTP/1 server or upstream client).
func runProxy(config, cpuProfile string, o proxy.Options) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// As reference-impl/cmd/proxy: GOGC 400 unless the environment says otherwise.
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
	o.BindAddress = "127.0.0.1"
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := proxy.New(o)
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
		if time.Since(start) > 30*time.Second {
			return fmt.Errorf("%s at %s not ready after 30s: %w", what, url, err)
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

// cpuTicks is the user+system CPU time, in clock ticks, of pid and its direct children (nginx's
// workers); threads are included in a process's figures.
func cpuTicks(pid int) int64 {
	stat := func(p string) (ppid int, ticks int64, ok bool) {
		b, err := os.ReadFile(filepath.Join("/proc", p, "stat"))
		if err != nil {
			return 0, 0, false
		}
		// The command name is in parentheses and may hold spaces: fields count from after it.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			return 0, 0, false
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return 0, 0, false
		}
		ppid, _ = strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		return ppid, ut + st, true
	}
	_, total, _ := stat(strconv.Itoa(pid))
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if ppid, t, ok := stat(e.Name()); ok && ppid == pid {
			total += t
		}
	}
	return total
}

// clkTck is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux (every architecture
// Go supports).
const clkTck = 100

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// nginxConf gives nginx the reference proxy's forwarding job (writeUpstreamHead): Host kept,
// X-Forwarded-For, -Host and -Proto set, as every nginx reverse-proxy setup of a Gateway does
// (ingress-nginx sets all three). Without the last two the echo backend, which answers with the
// request's headers, wrote 408-byte answers through nginx and 481-byte ones through the proxy:
// more work for the backend and the load generator on the same two CPUs, counted against the
// proxy.
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
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`

// traefikDynamic is Traefik's file provider configuration: every request to the backend, as
// the reference proxy's one route does. Traefik's default transport keeps up to 200 idle
// connections per host.
const traefikDynamic = `http:
  routers:
    bench:
      rule: PathPrefix(` + "`/`" + `)
      entryPoints: [web]
      service: backend
  services:
    backend:
      loadBalancer:
        servers:
          - url: http://127.0.0.1:%d
`

type opts struct {
	d          time.Duration
	rounds     int
	conns      int
	nginx      string
	workers    int
	traefik    string
	std        bool
	cpuProfile string
	slices     int
	ab         string // another bench binary whose reference proxy is measured too
}

type target struct {
	name string
	url  string
	pid  int // whose CPU (with its children) is counted; 0: none
}

// run is one measured run of one target.
type run struct {
	n, errs int64
	d       time.Duration
	cpu     time.Duration // the target's processes
	beCPU   time.Duration // the echo backend's
	genCPU  time.Duration // the load generator's (this process)
	// The machine's CPU time, all processes: busy (user, nice, system, irq, softirq), idle
	// (with iowait) and stolen by the hypervisor.
	busy, idle, steal time.Duration
	hist              *hdrhistogram.Histogram
	load              string // load average before -> after
}

func (r run) rps() float64 { return float64(r.n) / r.d.Seconds() }
func (r run) p(q float64) time.Duration {
	return time.Duration(r.hist.ValueAtQuantile(q)) * time.Microsecond
}
func (r run) cpuPerReq() time.Duration { return r.perReq(r.cpu) }

func (r run) perReq(d time.Duration) time.Duration {
	if r.n == 0 {
		return 0
	}
	return d / time.Duration(r.n)
}

// share is d's share of the machine's CPU time during the run.
func (r run) share(d time.Duration) float64 {
	all := r.busy + r.idle + r.steal
	if all <= 0 {
		return 0
	}
	return float64(d) / float64(all)
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
}

func drive(o opts) error {
	nginxPath, err := exec.LookPath(o.nginx)
	if err != nil {
		return fmt.Errorf("nginx binary %q not found (install it: apt-get install -y nginx-light): %w", o.nginx, err)
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
	var ports [7]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	backendPort, proxyPort, nginxPort, traefikPort, stdPort, stdServerPort, abPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]

	be, err := start(self, "-role=backend", "-addr=127.0.0.1:"+strconv.Itoa(backendPort))
	if err != nil {
		return err
	}
	defer be.stop()

	startProxy := func(bin string, port int, variant, profile string) (*proc, error) {
		snap := ir.Snapshot{Version: 1, Gateway: ir.NamespacedName{Namespace: "bench", Name: "gw"}, Listeners: []ir.Listener{{
			Name: "http", Port: int32(port), Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
				RouteMeta: ir.RouteMeta{Namespace: "bench", Name: "route"},
				Rules: []ir.HTTPRule{{Backends: []ir.Backend{{Name: "bench/echo:80", Weight: 1,
					Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(backendPort)}}}}}}}}}}}
		b, _ := json.Marshal(snap)
		cfg := filepath.Join(dir, fmt.Sprintf("snapshot-%d.json", port))
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			return nil, err
		}
		args := []string{"-role=proxy", "-config=" + cfg}
		if variant != "" {
			args = append(args, variant)
		}
		if profile != "" {
			args = append(args, "-cpuprofile="+profile)
		}
		return start(bin, args...)
	}
	px, err := startProxy(self, proxyPort, "", o.cpuProfile)
	if err != nil {
		return err
	}
	defer px.stop()

	conf := fmt.Sprintf(nginxConf, o.workers, dir, backendPort, nginxPort)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return err
	}
	ng, err := start(nginxPath, "-c", confFile, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return err
	}
	defer ng.stop()

	// Rounds run nginx, the reference proxy, then the others, in this order.
	targets := []target{
		{"nginx " + version(nginxPath, "-v", "nginx version: nginx/"), fmt.Sprintf("http://127.0.0.1:%d/bench", nginxPort), ng.cmd.Process.Pid},
		{"gatecheck proxy", fmt.Sprintf("http://127.0.0.1:%d/bench", proxyPort), px.cmd.Process.Pid},
	}
	var traefikConf string
	if o.traefik != "" && o.traefik != "none" {
		dyn := filepath.Join(dir, "traefik-dynamic.yaml")
		traefikConf = fmt.Sprintf(traefikDynamic, backendPort)
		if err := os.WriteFile(dyn, []byte(traefikConf), 0o600); err != nil {
			return err
		}
		args := []string{"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=ERROR",
			fmt.Sprintf("--entryPoints.web.address=127.0.0.1:%d", traefikPort), "--providers.file.filename=" + dyn}
		traefikConf = "traefik " + strings.Join(args, " ") + "\n" + dyn + ":\n" + traefikConf
		tr, err := start(o.traefik, args...)
		if err != nil {
			return err
		}
		defer tr.stop()
		targets = append(targets, target{"traefik " + version(o.traefik, "version", "Version:"), fmt.Sprintf("http://127.0.0.1:%d/bench", traefikPort), tr.cmd.Process.Pid})
	}
	if o.std {
		ps, err := startProxy(self, stdPort, "-std", "")
		if err != nil {
			return err
		}
		defer ps.stop()
		targets = append(targets, target{"gatecheck, Transport", fmt.Sprintf("http://127.0.0.1:%d/bench", stdPort), ps.cmd.Process.Pid})
		pn, err := startProxy(self, stdServerPort, "-std-server", "")
		if err != nil {
			return err
		}
		defer pn.stop()
		targets = append(targets, target{"gatecheck, net/http srv", fmt.Sprintf("http://127.0.0.1:%d/bench", stdServerPort), pn.cmd.Process.Pid})
	}
	if o.ab != "" {
		pa, err := startProxy(o.ab, abPort, "", "")
		if err != nil {
			return err
		}
		defer pa.stop()
		targets = append(targets, target{"gatecheck, -ab build", fmt.Sprintf("http://127.0.0.1:%d/bench", abPort), pa.cmd.Process.Pid})
	}
	direct := target{"backend direct", fmt.Sprintf("http://127.0.0.1:%d/bench", backendPort), 0}
	for _, t := range append([]target{direct}, targets...) {
		if err := waitHTTP(t.name, t.url); err != nil {
			return err
		}
	}

	fmt.Printf("loopback, %d keep-alive HTTP/1.1 connections per target, closed loop, %d rounds of %v per target in %d alternating slices (after 0.5 s warm-up), %d CPUs\n",
		o.conns, o.rounds, o.d, o.slices, runtime.NumCPU())
	fmt.Printf("reference proxy: GOMAXPROCS %d (the CPUs), GOGC 400 (reference-impl/cmd/proxy's default; GOGC=%q in the environment)\n",
		runtime.NumCPU(), os.Getenv("GOGC"))
	fmt.Printf("nginx configuration:\n%s", conf)
	if traefikConf != "" {
		fmt.Printf("Traefik configuration:\n%s", traefikConf)
	} else {
		fmt.Println("Traefik: no binary (gatecheck builds it with `gatecheck images build traefik`; -traefik PATH): skipped")
	}
	fmt.Println()

	// The ceiling: the backend without a proxy, measured once.
	fmt.Println("CPU/req: the proxy's CPU time per request; backend, load gen: the echo backend's and this load generator's; idle, steal: the machine's CPU time nobody used, and that the hypervisor took")
	fmt.Printf("%-5s %-24s %9s %9s %9s %12s %9s %9s %5s %5s %6s  %s\n", "round", "target", "req/s", "p50", "p99", "CPU/req", "backend", "load gen", "idle", "steal", "errors", "load avg before -> after")
	dl := newLoader(direct, o.conns, be.cmd.Process.Pid)
	dl.slice(500 * time.Millisecond) // warm-up
	before := loadavg()
	d := dl.slice(o.d)
	d.load = before + " -> " + loadavg()
	printRun("-", direct.name, d)
	dl.close()

	// Each target keeps its client connections for the whole run. A round gives each target
	// o.d, in o.slices slices taken in turn, so that a change in the machine's load within a
	// round hits every target alike. The order rotates from slice to slice (nginx, gatecheck,
	// traefik; gatecheck, traefik, nginx; ...): what a target leaves running after its slice
	// (Traefik's garbage collection, say) does not always fall on the same next target.
	loaders := make([]*loader, len(targets))
	for i, t := range targets {
		loaders[i] = newLoader(t, o.conns, be.cmd.Process.Pid)
		defer loaders[i].close()
		loaders[i].slice(500 * time.Millisecond) // warm-up
	}
	runs := make([][]run, o.rounds)
	for r := range o.rounds {
		runs[r] = make([]run, len(targets))
		for i := range targets {
			runs[r][i] = run{hist: newHist()}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d: %d targets, %v each in %d slices\n", r+1, o.rounds, len(targets), o.d, o.slices)
		before := loadavg()
		for sl := range o.slices {
			for k := range targets {
				i := (sl + k) % len(targets)
				runs[r][i].add(loaders[i].slice(o.d / time.Duration(o.slices)))
			}
		}
		load := before + " -> " + loadavg()
		for i, t := range targets {
			runs[r][i].load = load
			printRun(strconv.Itoa(r+1), t.name, runs[r][i])
		}
		ng, gc := runs[r][0], runs[r][1]
		fmt.Printf("round %d: gatecheck/nginx throughput %.2fx, p99 %.2fx (target: >= 1.00x, <= 1.00x): %s\n",
			r+1, gc.rps()/ng.rps(), float64(gc.p(99))/float64(ng.p(99)), verdict(gc, ng))
	}

	fmt.Println("\nall rounds:")
	fmt.Printf("%-24s %9s %9s %9s %12s %9s %9s %5s %5s %6s\n", "target", "req/s", "p50", "p99", "CPU/req", "backend", "load gen", "idle", "steal", "errors")
	total := make([]run, len(targets))
	var errs int64
	for i, t := range targets {
		total[i] = run{hist: newHist()}
		for r := range runs {
			total[i].add(runs[r][i])
		}
		errs += total[i].errs
		r := total[i]
		fmt.Printf("%-24s %9.0f %9v %9v %12v %9v %9v %4.0f%% %4.0f%% %6d\n", t.name, r.rps(), r.p(50), r.p(99), r.cpuPerReq().Round(100*time.Nanosecond),
			r.perReq(r.beCPU).Round(100*time.Nanosecond), r.perReq(r.genCPU).Round(100*time.Nanosecond), 100*r.share(r.idle), 100*r.share(r.steal), r.errs)
	}
	met := 0
	for r := range runs {
		if verdict(runs[r][1], runs[r][0]) == "met" {
			met++
		}
	}
	for i := 2; i < len(targets); i++ {
		fmt.Printf("ratio gatecheck/%s: throughput %.2fx, p50 %.2fx, p99 %.2fx, CPU per request %.2fx\n", targets[i].name,
			total[1].rps()/total[i].rps(), ratio(total[1].p(50), total[i].p(50)), ratio(total[1].p(99), total[i].p(99)), ratio(total[1].cpuPerReq(), total[i].cpuPerReq()))
	}
	fmt.Printf("ratio gatecheck/nginx: throughput %.2fx, p50 %.2fx, p99 %.2fx, CPU per request %.2fx; target met in %d of %d rounds\n",
		total[1].rps()/total[0].rps(), ratio(total[1].p(50), total[0].p(50)), ratio(total[1].p(99), total[0].p(99)), ratio(total[1].cpuPerReq(), total[0].cpuPerReq()), met, len(runs))
	if errs > 0 {
		return errors.New("some requests failed; the figures above are not comparable")
	}
	return nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func verdict(gc, ng run) string {
	if gc.rps() >= ng.rps() && gc.p(99) <= ng.p(99) {
		return "met"
	}
	return "NOT met"
}

func printRun(round, name string, r run) {
	cpu := "-"
	if r.cpu > 0 {
		cpu = r.cpuPerReq().Round(100 * time.Nanosecond).String()
	}
	fmt.Printf("%-5s %-24s %9.0f %9v %9v %12s %9v %9v %4.0f%% %4.0f%% %6d  %s\n", round, name, r.rps(), r.p(50), r.p(99), cpu,
		r.perReq(r.beCPU).Round(100*time.Nanosecond), r.perReq(r.genCPU).Round(100*time.Nanosecond), 100*r.share(r.idle), 100*r.share(r.steal), r.errs, r.load)
}

func version(bin, arg, prefix string) string {
	out, _ := exec.Command(bin, arg).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// loader drives one target with conns closed-loop clients, each on its own keep-alive
// connection kept from slice to slice.
type loader struct {
	t       target
	clients []*http.Client
	// backend is the echo backend's pid: its CPU is counted too, as is the load generator's
	// (this process): all of them share the machine's CPUs, so the throughput is about the
	// CPUs over the CPU time all of them use per request.
	backend int
}

func newLoader(t target, conns, backend int) *loader {
	l := &loader{t: t, backend: backend}
	for range conns {
		tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
		l.clients = append(l.clients, &http.Client{Transport: tr, Timeout: 10 * time.Second})
	}
	return l
}

func (l *loader) close() {
	for _, c := range l.clients {
		c.Transport.(*http.Transport).CloseIdleConnections()
	}
}

// slice loads the target for d and records the latency of every request (microseconds) and
// the CPU time its processes used meanwhile.
func (l *loader) slice(d time.Duration) run {
	var c0, b0 int64
	if l.t.pid != 0 {
		c0 = cpuTicks(l.t.pid)
	}
	if l.backend != 0 {
		b0 = cpuTicks(l.backend)
	}
	g0 := selfCPU()
	busy0, idle0, steal0 := machineCPU()
	var mu sync.Mutex
	total := run{hist: newHist()}
	var wg sync.WaitGroup
	begin := time.Now()
	end := begin.Add(d)
	for _, c := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHist()
			var myN, myErrs int64
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				res, err := c.Get(l.t.url)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					myErrs++
					continue
				}
				myN++
				h.RecordValue(time.Since(t0).Microseconds())
			}
			mu.Lock()
			total.hist.Merge(h)
			total.n += myN
			total.errs += myErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.d = time.Since(begin)
	if l.t.pid != 0 {
		total.cpu = time.Duration(cpuTicks(l.t.pid)-c0) * time.Second / clkTck
	}
	if l.backend != 0 {
		total.beCPU = time.Duration(cpuTicks(l.backend)-b0) * time.Second / clkTck
	}
	total.genCPU = selfCPU() - g0
	busy1, idle1, steal1 := machineCPU()
	total.busy, total.idle, total.steal = busy1-busy0, idle1-idle0, steal1-steal0
	return total
}

// selfCPU is this process's user+system CPU time (all its threads).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU returns the machine's CPU time so far, from /proc/stat's "cpu" line: busy (user,
// nice, system, irq, softirq), idle (with iowait) and steal.
func machineCPU() (busy, idle, steal time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, 0
	}
	var t [8]int64
	for i := range t {
		t[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clkTck }
	return tick(t[0] + t[1] + t[2] + t[5] + t[6]), tick(t[3] + t[4]), tick(t[7])
}

func (r *run) add(x run) {
	r.n += x.n
	r.errs += x.errs
	r.d += x.d
	r.cpu += x.cpu
	r.beCPU += x.beCPU
	r.genCPU += x.genCPU
	r.busy += x.busy
	r.idle += x.idle
	r.steal += x.steal
	r.hist.Merge(x.hist)
}
