package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/cluster/internal/loadbalancer"
	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/netguard"
	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/pki"
	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/proc"
	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/render"
	"github.com/gatecheck/gatecheck/cluster/internal/status"
	"github.com/gatecheck/gatecheck/internal/command"
)

// DefaultStateDir is where the host cluster keeps everything it writes.
const DefaultStateDir = "/var/lib/gatecheck/host"

// Pinned versions of the upstream components (hack/build-host-binaries.sh builds them).
const (
	KubernetesVersion = "v1.37.2"
	ContainerdVersion = "v2.4.2"
	EtcdVersion       = "v3.6.4"
)

// Options configure the host provider; zero values take the documented defaults.
type Options struct {
	// StateDir holds PKI, configs, logs, PID files and data; default DefaultStateDir.
	StateDir string
	// CacheDir holds the built binaries; default $GATECHECK_CACHE, else ~/.cache/gatecheck.
	CacheDir string
	// ModuleRoot is the gatecheck checkout, for hack/build-host-binaries.sh and the pause
	// image's source.
	ModuleRoot string
	// Keep leaves a cluster that failed to come up running, for debugging.
	Keep bool
	// Logger receives progress; default discards.
	Logger *slog.Logger
	// BuildOutput receives the binary build's own progress lines; default os.Stderr.
	BuildOutput interface{ Write([]byte) (int, error) }
}

// Provider is the host cluster.
type Provider struct {
	opts Options
	log  *slog.Logger
}

// New returns a host provider; it touches nothing until Up or Down.
func New(opts Options) *Provider {
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if opts.CacheDir == "" {
		opts.CacheDir = os.Getenv("GATECHECK_CACHE")
	}
	if opts.CacheDir == "" {
		home, _ := os.UserHomeDir()
		opts.CacheDir = filepath.Join(home, ".cache", "gatecheck")
	}
	if opts.BuildOutput == nil {
		opts.BuildOutput = os.Stderr
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{opts: opts, log: log}
}

func (p *Provider) binDir(component, version string) string {
	return filepath.Join(p.opts.CacheDir, component, version, "bin")
}

// config is the rendered configuration; nodeIP may be nil where only paths are needed.
func (p *Provider) config(nodeIP net.IP) render.Config {
	return render.Config{
		StateDir:      p.opts.StateDir,
		KubernetesBin: p.binDir("kubernetes", KubernetesVersion),
		ContainerdBin: p.binDir("containerd", ContainerdVersion),
		EtcdBin:       p.binDir("etcd", EtcdVersion),
		NodeIP:        nodeIP,
		// GOGC of the cluster's processes; "off" keeps Go's default (see render.DefaultGoGC).
		GoGC: os.Getenv("GATECHECK_HOST_GOGC"),
	}.Defaults()
}

func (p *Provider) processes(cfg render.Config) []proc.Process {
	var out []proc.Process
	for _, c := range render.Components(cfg) {
		out = append(out, proc.Process{
			Name:    c.Name,
			Argv:    c.Argv,
			Env:     cfg.Env(),
			PIDFile: filepath.Join(cfg.RunDir(), c.Name+".pid"),
			LogFile: filepath.Join(cfg.LogDir(), c.Name+".log"),
		})
	}
	return out
}

// Kubeconfig is the admin kubeconfig's path (certificates embedded).
func (p *Provider) Kubeconfig() string { return p.config(nil).Kubeconfig() }

// Preflight says what this machine lacks to run the host cluster, or nil.
func Preflight() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("host cluster needs Linux; this is %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return errors.New("host cluster needs root (it runs containerd, kubelet and iptables); run as root or use --cluster kind|existing")
	}
	return nil
}

// Up brings the cluster up, or says it already is. A partial cluster left by a killed run
// is torn down first.
func (p *Provider) Up(ctx context.Context) error {
	start := time.Now()
	if err := Preflight(); err != nil {
		return err
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.trustedBinaries(); err != nil {
		return err
	}
	cfg := p.config(nil)
	procs := p.processes(cfg)
	if p.healthy(ctx, procs) {
		p.log.Info("host cluster is already up", "kubeconfig", cfg.Kubeconfig())
		// A cluster brought up by an older gatecheck may lack MetalLB; installing it again is
		// a few idempotent applies.
		uplink, _, err := netguard.Uplink()
		if err != nil {
			return err
		}
		return p.loadBalancer(ctx, cfg, uplink, nil)
	}
	if p.leftovers(procs) {
		p.log.Info("found leftovers of an earlier run (killed or crashed); tearing them down first")
		if err := p.down(ctx); err != nil {
			return fmt.Errorf("clean up earlier run: %w", err)
		}
	}
	if err := p.ensurePackages(ctx); err != nil {
		return err
	}
	if p.opts.ModuleRoot != "" {
		// The build script, and the pause image every pod runs, come from the checkout.
		if err := p.trustedSources(); err != nil {
			return err
		}
	}
	if err := p.ensureBinaries(ctx); err != nil {
		return err
	}
	if err := p.trustedBinaries(); err != nil {
		return err
	}
	uplink, nodeIP, err := netguard.Uplink()
	if err != nil {
		return err
	}
	cfg = p.config(nodeIP)
	if err := cfg.Validate(); err != nil {
		return err
	}
	p.log.Info("bringing up host cluster", "kubernetes", KubernetesVersion, "containerd", ContainerdVersion, "etcd", EtcdVersion, "nodeIP", nodeIP.String(), "uplink", uplink, "stateDir", cfg.StateDir)
	err = p.up(ctx, cfg, uplink, start)
	if err != nil && !p.opts.Keep {
		p.log.Info("bring-up failed; tearing down (pass --keep to leave it for debugging)", "error", err)
		// The caller's context may be what failed; teardown gets its own.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if derr := p.down(dctx); derr != nil {
			err = errors.Join(err, fmt.Errorf("teardown after failed bring-up: %w", derr))
		}
	}
	return err
}

func (p *Provider) up(ctx context.Context, cfg render.Config, uplink string, start time.Time) error {
	for _, d := range []string{cfg.ConfDir(), cfg.LogDir(), cfg.RunDir(), cfg.CNIConfDir(), cfg.Path("images")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	for path, content := range render.Files(cfg) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if _, err := pki.Ensure(pki.Options{Dir: cfg.PKIDir(), NodeIP: cfg.NodeIP, ServiceIP: cfg.ServiceIP(), Server: cfg.APIServerURL(), ClusterName: "gatecheck-host"}); err != nil {
		return fmt.Errorf("generate pki: %w", err)
	}
	// Before anything outside the state dir changes: what is already there is not ours, and
	// every value changed is written down first, so down undoes exactly this bring-up.
	changes, recorded, err := loadChanges(cfg.Path(ChangesFile))
	if err != nil {
		return err
	}
	if !recorded {
		if err := changes.snapshotForeign(ctx, netnsDirs); err != nil {
			return fmt.Errorf("record the machine's iptables chains and netns before bring-up: %w", err)
		}
		if len(changes.ForeignChains) > 0 || len(changes.ForeignNetns) > 0 {
			p.log.Info("KUBE-/CNI- chains or CNI netns of something else are on this machine; down will leave them, but kube-proxy shares chain names with any other Kubernetes here", "chains", fmt.Sprint(changes.ForeignChains), "netns", len(changes.ForeignNetns))
		}
	}
	if err := kernelSettings(ctx, changes); err != nil {
		return err
	}
	if err := netguard.Install(ctx, netguard.GuardRules(uplink, cfg.ClusterCIDR, cfg.ServiceCIDR, cfg.LoadBalancerCIDR)); err != nil {
		return err
	}
	pauseArchive, err := p.pauseImage(ctx, cfg)
	if err != nil {
		return err
	}
	p.step(start, "configs, PKI and guard rules ready")

	procs := p.processes(cfg)
	byName := map[string]proc.Process{}
	for _, pr := range procs {
		byName[pr.Name] = pr
	}
	startOne := func(name string) error {
		pr := byName[name]
		pid, err := proc.Start(pr)
		if err != nil {
			return err
		}
		p.log.Debug("started", "component", name, "pid", pid, "log", pr.LogFile)
		return nil
	}
	// containerd and etcd do not depend on each other: start both, then wait.
	if err := startOne(render.ContainerdName); err != nil {
		return err
	}
	if err := startOne(render.EtcdName); err != nil {
		return err
	}
	if err := p.waitFor(ctx, start, "containerd socket", 30*time.Second, byName[render.ContainerdName], func(ctx context.Context) error {
		return dialUnix(cfg.ContainerdSocket())
	}); err != nil {
		return err
	}
	if err := p.importArchives(ctx, cfg, []string{pauseArchive}); err != nil {
		return err
	}
	// MetalLB's images need only containerd: build (a cached compile check, ~2 s) and load them
	// while etcd and the API server start, instead of after the node is Ready.
	lbImagesCtx, cancelLBImages := context.WithCancel(ctx)
	defer cancelLBImages()
	lbImages := make(chan lbPrepared, 1)
	go func() { lbImages <- p.prepareLoadBalancer(lbImagesCtx, cfg) }()
	etcd, err := etcdClient(cfg.PKIDir())
	if err != nil {
		return err
	}
	defer etcd.CloseIdleConnections()
	if err := p.waitFor(ctx, start, "etcd health", 30*time.Second, byName[render.EtcdName], func(ctx context.Context) error {
		return etcdHealthy(ctx, etcd, cfg.EtcdURL())
	}); err != nil {
		return err
	}
	if err := startOne(render.APIServerName); err != nil {
		return err
	}
	cs, err := newClient(cfg.Kubeconfig(), 5*time.Second)
	if err != nil {
		return err
	}
	if err := p.waitFor(ctx, start, "kube-apiserver /readyz", 90*time.Second, byName[render.APIServerName], func(ctx context.Context) error {
		return readyz(ctx, cs)
	}); err != nil {
		return err
	}
	for _, n := range []string{render.ControllerManagerName, render.SchedulerName, render.KubeletName, render.KubeProxyName} {
		if err := startOne(n); err != nil {
			return err
		}
	}
	if err := p.waitFor(ctx, start, "node "+cfg.NodeName+" Ready", 120*time.Second, byName[render.KubeletName], func(ctx context.Context) error {
		return nodeReady(ctx, cs, cfg.NodeName)
	}); err != nil {
		return err
	}
	nodeReadyAt := time.Since(start)
	// MetalLB installs while the controller-manager creates the default ServiceAccount (about
	// 5 s after the node is Ready): its own Pods run under their own ServiceAccounts, and its
	// Deployment waits for the same controller-manager anyway.
	lbDone := make(chan error, 1)
	lbCtx, cancelLB := context.WithCancel(ctx)
	defer cancelLB()
	go func() { lbDone <- p.loadBalancer(lbCtx, cfg, uplink, lbImages) }()
	if err := p.waitFor(ctx, start, "default ServiceAccount", 60*time.Second, byName[render.ControllerManagerName], func(ctx context.Context) error {
		return defaultServiceAccount(ctx, cs)
	}); err != nil {
		cancelLB()
		<-lbDone
		return err
	}
	if err := <-lbDone; err != nil {
		return err
	}
	p.step(start, "MetalLB ready")
	// Every component must still be running: one that crashed after its wait passed would
	// otherwise surface as a mystery later.
	for _, pr := range procs {
		if _, ok := proc.Running(pr); !ok {
			return fmt.Errorf("%s exited during bring-up; %s", pr.Name, logTail(pr.LogFile, 15))
		}
	}
	version, _ := serverVersion(cs)
	p.log.Info("host cluster up", "kubernetes", version, "nodeReadyAfter", nodeReadyAt.Round(10*time.Millisecond), "took", time.Since(start).Round(10*time.Millisecond), "kubeconfig", cfg.Kubeconfig())
	return nil
}

func (p *Provider) step(start time.Time, msg string) {
	p.log.Info(msg, "after", time.Since(start).Round(10*time.Millisecond))
}

// waitFor polls check until it passes, printing progress every 5 s, and fails early with
// the log tail when the component that should answer has exited.
func (p *Provider) waitFor(ctx context.Context, start time.Time, what string, timeout time.Duration, owner proc.Process, check func(context.Context) error) error {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nextReport := begin.Add(5 * time.Second)
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			p.step(start, what+" ok")
			return nil
		}
		if _, ok := proc.Running(owner); !ok {
			return fmt.Errorf("waiting for %s: %s exited; %s", what, owner.Name, logTail(owner.LogFile, 20))
		}
		if time.Now().After(nextReport) {
			msg := last.Error()
			if len(msg) > 300 {
				msg = msg[:300] + "..."
			}
			p.log.Info("still waiting", "for", what, "soFar", time.Since(begin).Round(time.Second), "lastError", msg)
			nextReport = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: gave up after %s: %w; last error: %v; see %s", what, time.Since(begin).Round(time.Second), ctx.Err(), last, owner.LogFile)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("no log at %s: %v", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", path, strings.Join(lines, "\n"))
}

func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// healthy: every component runs and the API server is ready.
func (p *Provider) healthy(ctx context.Context, procs []proc.Process) bool {
	for _, pr := range procs {
		if _, ok := proc.Running(pr); !ok {
			return false
		}
	}
	cs, err := newClient(p.Kubeconfig(), 3*time.Second)
	if err != nil {
		return false
	}
	return readyz(ctx, cs) == nil
}

// procSys is where sysctls are read and written.
const procSys = "/proc/sys"

// leftovers: anything an earlier run may have left (PID files, the bridge, state mounts, a
// record of machine changes not yet undone).
func (p *Provider) leftovers(procs []proc.Process) bool {
	if fileExists(filepath.Join(p.opts.StateDir, ChangesFile)) {
		return true
	}
	for _, pr := range procs {
		if _, err := os.Stat(pr.PIDFile); err == nil {
			return true
		}
	}
	if _, err := net.InterfaceByName(p.config(nil).Bridge); err == nil {
		return true
	}
	return len(mountsUnder(p.opts.StateDir)) > 0
}

// packages maps what the cluster needs to the Debian package that provides it.
var packages = []struct{ check, pkg string }{
	{"runc", "runc"},
	{"iptables", "iptables"},
	{"conntrack", "conntrack"},
	{"socat", "socat"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/portmap", "containernetworking-plugins"},
	{"/usr/lib/cni/loopback", "containernetworking-plugins"},
}

// MissingPackages lists the OS packages whose programs are not installed.
func MissingPackages() []string {
	var missing []string
	seen := map[string]bool{}
	for _, p := range packages {
		var err error
		if filepath.IsAbs(p.check) {
			_, err = os.Stat(p.check)
		} else {
			_, err = exec.LookPath(p.check)
		}
		if err != nil && !seen[p.pkg] {
			seen[p.pkg] = true
			missing = append(missing, p.pkg)
		}
	}
	return missing
}

func (p *Provider) ensurePackages(ctx context.Context) error {
	missing := MissingPackages()
	if len(missing) == 0 {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("host cluster needs OS packages %s and this machine has no apt-get; install them with your package manager", strings.Join(missing, ", "))
	}
	start := time.Now()
	p.log.Info("installing OS packages (about 20 s)", "packages", strings.Join(missing, " "))
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	install := append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, missing...)
	if _, err := command.OutputEnv(ctx, env, install...); err != nil {
		// Usually a stale package index: refresh once and retry.
		p.log.Info("apt-get install failed; running apt-get update and retrying", "error", err)
		if _, uerr := command.OutputEnv(ctx, env, "apt-get", "update"); uerr != nil {
			return fmt.Errorf("install OS packages: %w", errors.Join(err, uerr))
		}
		if _, err := command.OutputEnv(ctx, env, install...); err != nil {
			return fmt.Errorf("install OS packages: %w", err)
		}
	}
	if still := MissingPackages(); len(still) > 0 {
		return fmt.Errorf("after apt-get install, still missing: %s", strings.Join(still, ", "))
	}
	p.log.Info("installed OS packages", "took", time.Since(start).Round(time.Second))
	return nil
}

// binariesComplete reports the components whose cache lacks the .complete marker.
func (p *Provider) missingBinaries() []string {
	var missing []string
	for _, c := range []struct{ name, version string }{{"kubernetes", KubernetesVersion}, {"containerd", ContainerdVersion}, {"etcd", EtcdVersion}} {
		if _, err := os.Stat(filepath.Join(p.binDir(c.name, c.version), ".complete")); err != nil {
			missing = append(missing, c.name+" "+c.version)
		}
	}
	return missing
}

func (p *Provider) ensureBinaries(ctx context.Context) error {
	missing := p.missingBinaries()
	if len(missing) == 0 {
		return nil
	}
	if p.opts.ModuleRoot == "" {
		return fmt.Errorf("binaries %s are not built in %s and no gatecheck checkout was found to build them; run from the checkout or run hack/build-host-binaries.sh", strings.Join(missing, ", "), p.opts.CacheDir)
	}
	script := filepath.Join(p.opts.ModuleRoot, "hack", "build-host-binaries.sh")
	start := time.Now()
	p.log.Info("building pinned binaries from the Go module proxy (first build on 2 cores: ~15 min; cached afterwards)", "missing", strings.Join(missing, ", "), "cache", p.opts.CacheDir)
	// MetalLB's images would otherwise compile from a cold Go cache after the binaries, when
	// containerd is up: 2m50s at the end of the 2026-12-04 fresh run. Built beside them,
	// MetalLB installed 5 s after the node was Ready and the host binaries took no longer
	// (16m01s against 17m01s), and prepareLoadBalancer finds the images by content and only
	// loads them. A failure here is met again, and reported, there.
	lbCtx, cancelLB := context.WithCancel(ctx)
	lbBuilt := make(chan struct{})
	go func() {
		defer close(lbBuilt)
		if _, err := p.buildLoadBalancerImages(lbCtx); err != nil {
			p.log.Debug("MetalLB images beside the host binaries", "error", err)
		}
	}()
	defer func() { cancelLB(); <-lbBuilt }()
	env := []string{"GATECHECK_CACHE=" + p.opts.CacheDir, "K8S_VERSION=" + KubernetesVersion, "CONTAINERD_VERSION=" + ContainerdVersion, "ETCD_VERSION=" + EtcdVersion}
	if err := command.Stream(ctx, p.opts.BuildOutput, env, p.opts.ModuleRoot, "bash", script, "all"); err != nil {
		return fmt.Errorf("build host binaries: %w", err)
	}
	<-lbBuilt
	p.log.Info("built pinned binaries", "took", time.Since(start).Round(time.Second))
	return nil
}

// kernelSettings loads the modules and sets the sysctls bridged pod traffic needs so
// kube-proxy's iptables rules see it; changes records each value it changes, for down.
func kernelSettings(ctx context.Context, changes *changeLog) error {
	// Probe the feature, not /sys/module: on kernels with them built in (like these VMs)
	// there is no module and no modprobe.
	filesystems, _ := os.ReadFile("/proc/filesystems")
	for _, m := range []struct{ module, present string }{
		{"br_netfilter", "/proc/sys/net/bridge/bridge-nf-call-iptables"},
		{"overlay", ""},
	} {
		if m.present != "" && fileExists(m.present) || m.present == "" && strings.Contains(string(filesystems), "\toverlay\n") {
			continue
		}
		if _, err := command.Output(ctx, "modprobe", m.module); err != nil {
			return fmt.Errorf("kernel feature %s is missing and could not be loaded: %w", m.module, err)
		}
	}
	for key, v := range map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
	} {
		if err := changes.setSysctl(procSys, key, v); err != nil {
			return err
		}
	}
	return nil
}

// loadBalancer installs MetalLB's controller with the pool cfg.LoadBalancerCIDR, and the
// guard rules that keep the pool on this machine. No speaker: kube-proxy answers a
// LoadBalancer Service's address on the node itself (its KUBE-SERVICES rules match the
// ingress IP in OUTPUT and PREROUTING), and announcing addresses to the network (ARP, BGP),
// which is all the speaker does, is exactly what must not happen here.
//
// prepared, when not nil, delivers the result of a prepareLoadBalancer started earlier; when
// nil, that is done here (only if MetalLB is not installed yet).
func (p *Provider) loadBalancer(ctx context.Context, cfg render.Config, uplink string, prepared <-chan lbPrepared) error {
	if err := netguard.Install(ctx, netguard.GuardRules(uplink, cfg.ClusterCIDR, cfg.ServiceCIDR, cfg.LoadBalancerCIDR)); err != nil {
		return err
	}
	rc, err := restConfig(cfg.Kubeconfig())
	if err != nil {
		return err
	}
	if loadbalancer.Installed(ctx, rc) {
		return nil
	}
	var lb lbPrepared
	if prepared == nil {
		lb = p.prepareLoadBalancer(ctx, cfg)
	} else {
		lb = <-prepared
	}
	if lb.err != nil {
		return lb.err
	}
	return loadbalancer.Install(ctx, rc, loadbalancer.Options{Manifest: lb.manifest, Pool: []string{cfg.LoadBalancerCIDR}, Logger: p.log})
}

// lbPrepared is what installing MetalLB needs before the cluster answers: its manifest, and its
// images loaded.
type lbPrepared struct {
	manifest []byte
	err      error
}

// prepareLoadBalancer builds MetalLB's images (cached by content), loads them into containerd
// and reads its manifest from the module cache (`go mod download`, ~0.5 s even when cached).
func (p *Provider) prepareLoadBalancer(ctx context.Context, cfg render.Config) lbPrepared {
	if p.opts.ModuleRoot == "" {
		return lbPrepared{err: fmt.Errorf("MetalLB's images are built with gatecheck's image builder, and no gatecheck checkout was found")}
	}
	built, err := p.buildLoadBalancerImages(ctx)
	if err != nil {
		return lbPrepared{err: fmt.Errorf("MetalLB images: %w", err)}
	}
	var archives []string
	for _, b := range built {
		archives = append(archives, b.Archive)
	}
	if err := p.importArchives(ctx, cfg, archives); err != nil {
		return lbPrepared{err: err}
	}
	manifest, err := loadbalancer.Manifest(ctx)
	return lbPrepared{manifest: manifest, err: err}
}

// buildLoadBalancerImages builds MetalLB's images into the image cache (by content: a second
// build compiles nothing).
func (p *Provider) buildLoadBalancerImages(ctx context.Context) ([]images.Built, error) {
	return images.Builder{ModuleRoot: p.opts.ModuleRoot, OutDir: filepath.Join(p.opts.CacheDir, "images"), Logger: p.log}.Build(ctx, loadbalancer.Images(false))
}

// pauseImage builds the sandbox image once (the builder reuses its archive, named by content,
// in the state dir across up/down).
func (p *Provider) pauseImage(ctx context.Context, cfg render.Config) (string, error) {
	if p.opts.ModuleRoot == "" {
		return "", fmt.Errorf("the pause image is built from gatecheck's source, and no gatecheck checkout was found")
	}
	built, err := images.Builder{ModuleRoot: p.opts.ModuleRoot, OutDir: cfg.Path("images"), Logger: p.log}.Build(ctx, []images.Spec{images.Pause()})
	if err != nil {
		return "", err
	}
	return built[0].Archive, nil
}

func (p *Provider) ctr(cfg render.Config, args ...string) []string {
	return append([]string{filepath.Join(cfg.ContainerdBin, "ctr"), "-a", cfg.ContainerdSocket(), "-n", "k8s.io"}, args...)
}

func (p *Provider) importArchives(ctx context.Context, cfg render.Config, archives []string) error {
	for _, a := range archives {
		start := time.Now()
		out, err := command.Output(ctx, p.ctr(cfg, "images", "import", a)...)
		if err != nil {
			return fmt.Errorf("load image archive %s: %w", a, err)
		}
		// ctr prints "<ref> saved" per image among progress lines; keep just the refs.
		var refs []string
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[1] == "saved" {
				refs = append(refs, f[0])
			}
		}
		p.log.Info("loaded image archive", "archive", a, "took", time.Since(start).Round(time.Millisecond), "images", strings.Join(refs, ","))
	}
	return nil
}

// LoadImages imports docker-archive tarballs into the cluster's containerd.
func (p *Provider) LoadImages(ctx context.Context, archives []string) error {
	if err := p.trustedBinaries(); err != nil {
		return err
	}
	cfg := p.config(nil)
	for _, pr := range p.processes(cfg) {
		if pr.Name == render.ContainerdName {
			if _, ok := proc.Running(pr); !ok {
				return errors.New("load images: the host cluster's containerd is not running; run `gatecheck cluster up` first")
			}
		}
	}
	return p.importArchives(ctx, cfg, archives)
}

// Describe reports whether the cluster is up and what runs.
func (p *Provider) Describe(ctx context.Context) (status.Status, error) {
	cfg := p.config(nil)
	st := status.Status{Provider: "host", Kubeconfig: cfg.Kubeconfig()}
	st.LoadBalancerPool = cfg.LoadBalancerCIDR
	st.Details = append(st.Details, "state dir: "+cfg.StateDir, "binaries: "+p.opts.CacheDir,
		fmt.Sprintf("load balancer: MetalLB %s controller, pool %s (kube-proxy answers it on this machine; guard rules keep it off the uplink)", loadbalancer.Version, cfg.LoadBalancerCIDR))
	for _, pr := range p.processes(cfg) {
		pid, ok := proc.Running(pr)
		state := "not running"
		if ok {
			state = fmt.Sprintf("running, pid %d", pid)
		}
		st.Details = append(st.Details, fmt.Sprintf("%s: %s (log %s)", pr.Name, state, pr.LogFile))
	}
	if cs, err := newClient(cfg.Kubeconfig(), 3*time.Second); err == nil && readyz(ctx, cs) == nil {
		st.Up = true
		st.KubernetesVersion, _ = serverVersion(cs)
	}
	return st, nil
}

// Down stops everything the host cluster started and removes what it left: recorded
// processes, containers and their shims, kube-proxy's rules, netns mounts, the bridge,
// KUBE-/CNI- chains, the guard rules and mounts under the state dir. Safe to repeat and
// after a crash. PKI, configs, logs, the binaries and containerd's image store are kept, so
// the next Up is fast and loaded images survive.
func (p *Provider) Down(ctx context.Context) error {
	if err := Preflight(); err != nil {
		return err
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return p.down(ctx)
}

func (p *Provider) down(ctx context.Context) error {
	start := time.Now()
	cfg := p.config(nil)
	procs := p.processes(cfg)
	byName := map[string]proc.Process{}
	for _, pr := range procs {
		byName[pr.Name] = pr
	}
	var errs []error
	// Teardown touches outside the state dir only what this cluster made: KUBE-/CNI- chains
	// and cni-* netns that were not there before up, and the sysctls up changed.
	changes, recorded, err := loadChanges(cfg.Path(ChangesFile))
	if err != nil {
		errs = append(errs, err)
	}
	// A cluster brought up by a gatecheck older than the record: everything KUBE-/CNI- is
	// taken as its, as teardown always did; the sysctls it changed are unknown and stay.
	legacy := err == nil && !recorded && p.leftovers(procs)
	if legacy {
		p.log.Info("no record of what up changed (a cluster brought up by an older gatecheck): removing every KUBE-/CNI- chain and cni-* netns; net.ipv4.ip_forward and net.bridge.bridge-nf-call-ip{,6}tables stay 1", "record", cfg.Path(ChangesFile))
	}
	scoped := recorded || legacy
	keepNetns := func(string) bool { return false }
	var keepChains netguard.Chains
	if recorded {
		keepNetns, keepChains = changes.foreignNetns, changes.ForeignChains
	}
	// Root runs ctr, containerd and kube-proxy from the cache below; without a trusted cache
	// those steps are skipped and teardown reports it.
	trustErr := p.trustedBinaries()
	if trustErr != nil {
		errs = append(errs, fmt.Errorf("containers and kube-proxy rules not removed: %w", trustErr))
	}
	lap := time.Now()
	stepDone := func(what string) {
		p.log.Debug("teardown step", "step", what, "took", time.Since(lap).Round(time.Millisecond))
		lap = time.Now()
	}
	// Stop in three stages: clients of the API server together, then the API server, then
	// etcd. Signalled together with etcd, the API server hangs in its graceful shutdown
	// waiting for etcd (seen: > 30 s). The containers go between the first two stages: the
	// Pods' own API clients (the implementation's controller, MetalLB) hold watches, and the
	// API server waited for them until its 10 s grace ran out (every teardown took 10.2 s to
	// stop the components; with the Pods gone first, the API server exits at once).
	removed := false
	for i, stage := range [][]string{
		{render.KubeProxyName, render.KubeletName, render.SchedulerName, render.ControllerManagerName},
		{render.APIServerName},
		{render.EtcdName},
	} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, name := range stage {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stopStart := time.Now()
				defer func() {
					p.log.Debug("stopped", "component", name, "took", time.Since(stopStart).Round(time.Millisecond))
				}()
				if err := proc.Stop(ctx, byName[name], 10*time.Second); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if i == 0 {
			stepDone("stop the API server's clients")
			if trustErr == nil {
				errs = append(errs, p.removeContainers(ctx, cfg, byName[render.ContainerdName]))
				removed = true
			}
			stepDone("remove containers")
		}
	}
	stepDone("stop the API server and etcd")
	if trustErr == nil && !removed {
		errs = append(errs, p.removeContainers(ctx, cfg, byName[render.ContainerdName]))
	}
	if err := proc.Stop(ctx, byName[render.ContainerdName], 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	stepDone("stop containerd")
	shim := filepath.Join(cfg.ContainerdBin, "containerd-shim-runc-v2")
	for _, pid := range proc.FindByExe(shim) {
		if err := proc.Signal(ctx, pid, shim, 2*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stop leftover shim pid %d: %w", pid, err))
		}
	}
	// kube-proxy --cleanup removes every kube-proxy chain on the machine: only when all of
	// them are this cluster's.
	if kp := filepath.Join(cfg.KubernetesBin, "kube-proxy"); fileExists(kp) && trustErr == nil && scoped && !hasKubeChains(keepChains) {
		// Its exit status is unreliable when there is little to clean; chains are checked below.
		_, _ = command.Output(ctx, kp, "--cleanup")
	}
	stepDone("shims and kube-proxy --cleanup")
	if scoped {
		errs = append(errs, removeNetns(keepNetns))
	}
	errs = append(errs, removeBridge(ctx, cfg.Bridge), removeCNIResults(cfg.NetworkName))
	stepDone("netns, bridge, CNI results")
	if fileExistsInPath("iptables") {
		if scoped {
			errs = append(errs, netguard.CleanChains(ctx, keepChains, chainPrefixes...))
		}
		errs = append(errs, netguard.RemoveGuards(ctx))
	}
	stepDone("iptables chains and guard rules")
	errs = append(errs, unmountUnder(cfg.StateDir))
	stepDone("unmount state dir")
	if left := mountsUnder(cfg.StateDir); len(left) == 0 {
		// Only with nothing mounted below: removing through a live bind mount would delete
		// what it points at.
		for _, d := range []string{"etcd", "kubelet", "kubelet-pki", "kubelet-plugins", "pod-logs", "cni-ipam", "kcm-flex", filepath.Join("containerd", "state")} {
			if err := os.RemoveAll(cfg.Path(d)); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", cfg.Path(d), err))
			}
		}
	} else {
		errs = append(errs, fmt.Errorf("still mounted under %s, data left in place: %s", cfg.StateDir, strings.Join(left, ", ")))
	}
	if recorded {
		errs = append(errs, changes.restoreSysctls(procSys))
		stepDone("sysctls restored")
	}
	if err := errors.Join(errs...); err != nil {
		// The record stays: the next down (or up, which tears down first) acts on it again.
		return fmt.Errorf("host cluster teardown incomplete: %w", err)
	}
	if recorded {
		if err := changes.remove(); err != nil {
			return fmt.Errorf("host cluster teardown: %w", err)
		}
	}
	p.log.Info("host cluster down", "took", time.Since(start).Round(10*time.Millisecond))
	return nil
}

// removeContainers kills and deletes every container in containerd's k8s.io namespace.
// Shims outlive containerd, so after a crash containerd is started briefly to do this
// through its API rather than leaving containers orphaned.
func (p *Provider) removeContainers(ctx context.Context, cfg render.Config, ctrd proc.Process) error {
	shim := filepath.Join(cfg.ContainerdBin, "containerd-shim-runc-v2")
	if _, ok := proc.Running(ctrd); !ok {
		if len(proc.FindByExe(shim)) == 0 || !fileExists(cfg.ContainerdConfig()) {
			return nil
		}
		p.log.Info("containerd is gone but its shims still run; starting it briefly to remove their containers")
		if _, err := proc.Start(ctrd); err != nil {
			return err
		}
		if err := p.waitFor(ctx, time.Now(), "containerd socket", 30*time.Second, ctrd, func(context.Context) error { return dialUnix(cfg.ContainerdSocket()) }); err != nil {
			return err
		}
	}
	list := func(kind string) []string {
		out, err := command.Output(ctx, p.ctr(cfg, kind, "ls", "-q")...)
		if err != nil {
			return nil
		}
		return strings.Fields(string(out))
	}
	// One goroutine per task and container: each ctr call costs ~50-100 ms, and a pod has
	// two tasks (sandbox and container), so doing them in turn made teardown take ~10 s.
	var mu sync.Mutex
	var errs []error
	parallel := func(ids []string, do func(id string) error) {
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := do(id); err != nil && !strings.Contains(err.Error(), "not found") {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	parallel(list("tasks"), func(t string) error {
		_, _ = command.Output(ctx, p.ctr(cfg, "tasks", "kill", "-s", "SIGKILL", t)...)
		var err error
		for range 50 {
			if _, err = command.Output(ctx, p.ctr(cfg, "tasks", "delete", "-f", t)...); err == nil || strings.Contains(err.Error(), "not found") {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return err
	})
	parallel(list("containers"), func(c string) error {
		_, err := command.Output(ctx, p.ctr(cfg, "containers", "delete", c)...)
		return err
	})
	return errors.Join(errs...)
}

// hasKubeChains: some KUBE- chain in chains.
func hasKubeChains(chains netguard.Chains) bool {
	for _, cs := range chains {
		for _, c := range cs {
			if strings.HasPrefix(c, "KUBE-") {
				return true
			}
		}
	}
	return false
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func fileExistsInPath(prog string) bool {
	_, err := exec.LookPath(prog)
	return err == nil
}

func removeBridge(ctx context.Context, name string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	if _, err := command.Output(ctx, "ip", "link", "delete", name); err != nil {
		return fmt.Errorf("remove bridge %s: %w", name, err)
	}
	return nil
}

func removeCNIResults(network string) error {
	var errs []error
	for _, pattern := range []string{"/var/lib/cni/results/" + network + "-*", "/var/lib/cni/results/cni-loopback-*"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
