// Package render turns the host cluster's settings into the files and command lines of its
// components: containerd's config, the kubelet and kube-proxy configs, the CNI network and
// the argv of every process. Pure functions, so they are unit-tested without root.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"text/template"
)

// Config is everything the rendered files depend on.
type Config struct {
	// StateDir holds every file the cluster writes (PKI, configs, logs, PIDs, data).
	StateDir string
	// KubernetesBin, ContainerdBin and EtcdBin hold the pinned binaries.
	KubernetesBin, ContainerdBin, EtcdBin string
	// CNIBinDir holds the CNI plugins (Debian: /usr/lib/cni).
	CNIBinDir string
	// NodeName is the node's name; NodeIP its address on the default-route interface.
	NodeName string
	NodeIP   net.IP
	// PodCIDR is the node's pod range, inside ClusterCIDR; ServiceCIDR the ClusterIP range.
	PodCIDR, ClusterCIDR, ServiceCIDR string
	// LoadBalancerCIDR is MetalLB's address pool for LoadBalancer Services. kube-proxy answers
	// these addresses on the node and guard rules keep them off the uplink, like ServiceCIDR.
	LoadBalancerCIDR string
	// PauseImage is the sandbox image, pinned so containerd never pulls it.
	PauseImage string
	// Bridge is the Linux bridge the CNI network creates.
	Bridge string
	// NetworkName is the CNI network name (it prefixes /var/lib/cni/results entries).
	NetworkName string
	// GoGC and GoMemLimit are the GOGC and GOMEMLIMIT of the cluster's processes (all Go
	// programs); "off" for GoGC leaves the Go runtime's defaults (see DefaultGoGC).
	GoGC, GoMemLimit string
}

// DefaultGoGC and DefaultGoMemLimit trade memory, which these machines have plenty of, for
// CPU, which they have little of. With Go's default GOGC=100 the API server (~190 MB live with
// the Gateway API CRDs and 1,000 routes) ran a garbage collection every ~2 s while routes
// were created one by one, each mark phase taking 0.6-0.8 s of a 2-core machine's CPU away
// from everything else: 7 of the 8 slowest route propagations of a run fell inside one.
// GOGC=400 makes collections ~4x rarer (a few per minute under that load); GOMEMLIMIT keeps
// the heap bounded. The processes inside pods are not affected (their environment comes from
// the pod spec).
const (
	DefaultGoGC       = "400"
	DefaultGoMemLimit = "1536MiB"
)

// Defaults fills zero fields with the values the host provider uses.
func (c Config) Defaults() Config {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.CNIBinDir, "/usr/lib/cni")
	set(&c.NodeName, "gatecheck-node")
	set(&c.PodCIDR, "10.244.0.0/24")
	set(&c.ClusterCIDR, "10.244.0.0/16")
	set(&c.ServiceCIDR, "10.0.0.0/24")
	set(&c.LoadBalancerCIDR, "10.0.1.0/24")
	set(&c.PauseImage, "gatecheck.dev/pause:v1")
	set(&c.Bridge, "gatecheck0")
	set(&c.NetworkName, "gatecheck")
	set(&c.GoGC, DefaultGoGC)
	set(&c.GoMemLimit, DefaultGoMemLimit)
	return c
}

// Env is the environment the cluster's processes get on top of the provider's own.
func (c Config) Env() []string {
	if c.GoGC == "off" || c.GoGC == "" {
		return nil
	}
	env := []string{"GOGC=" + c.GoGC}
	if c.GoMemLimit != "" && c.GoMemLimit != "off" {
		env = append(env, "GOMEMLIMIT="+c.GoMemLimit)
	}
	return env
}

// Validate names the first field that cannot work.
func (c Config) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"StateDir", c.StateDir}, {"KubernetesBin", c.KubernetesBin}, {"ContainerdBin", c.ContainerdBin},
		{"EtcdBin", c.EtcdBin}, {"NodeName", c.NodeName},
	} {
		if f.v == "" {
			return fmt.Errorf("host cluster config: field %s is empty", f.name)
		}
	}
	if !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("host cluster config: field StateDir %q is not absolute", c.StateDir)
	}
	if c.NodeIP == nil || c.NodeIP.To4() == nil {
		return fmt.Errorf("host cluster config: field NodeIP %v is not an IPv4 address", c.NodeIP)
	}
	for _, f := range []struct{ name, v string }{{"PodCIDR", c.PodCIDR}, {"ClusterCIDR", c.ClusterCIDR}, {"ServiceCIDR", c.ServiceCIDR}, {"LoadBalancerCIDR", c.LoadBalancerCIDR}} {
		if _, _, err := net.ParseCIDR(f.v); err != nil {
			return fmt.Errorf("host cluster config: field %s: %w", f.name, err)
		}
	}
	_, cluster, _ := net.ParseCIDR(c.ClusterCIDR)
	podIP, _, _ := net.ParseCIDR(c.PodCIDR)
	if !cluster.Contains(podIP) {
		return fmt.Errorf("host cluster config: field PodCIDR %s is outside ClusterCIDR %s", c.PodCIDR, c.ClusterCIDR)
	}
	if len(c.Bridge) > 15 {
		return errors.New("host cluster config: field Bridge is longer than 15 characters (Linux interface name limit)")
	}
	return nil
}

// Path joins elem under the state dir.
func (c Config) Path(elem ...string) string {
	return filepath.Join(append([]string{c.StateDir}, elem...)...)
}

// Well-known paths under the state dir.
func (c Config) PKIDir() string           { return c.Path("pki") }
func (c Config) ConfDir() string          { return c.Path("conf") }
func (c Config) LogDir() string           { return c.Path("logs") }
func (c Config) RunDir() string           { return c.Path("run") }
func (c Config) CNIConfDir() string       { return c.Path("cni", "net.d") }
func (c Config) ContainerdSocket() string { return c.Path("containerd", "containerd.sock") }

// RegistryHostsDir is containerd's config_path: one directory per registry host holding a
// hosts.toml (RegistryHosts), read at every pull, so a registry started after `up` (a loopback
// one for --registry) is trusted by writing a file, without restarting containerd.
func (c Config) RegistryHostsDir() string { return c.Path("containerd", "certs.d") }
func (c Config) Kubeconfig() string       { return c.Path("pki", "admin.kubeconfig") }
func (c Config) ContainerdConfig() string { return c.Path("conf", "containerd.toml") }
func (c Config) KubeletConfig() string    { return c.Path("conf", "kubelet.yaml") }
func (c Config) KubeProxyConfig() string  { return c.Path("conf", "kube-proxy.yaml") }
func (c Config) CNIConfig() string {
	return filepath.Join(c.CNIConfDir(), "10-"+c.NetworkName+".conflist")
}
func (c Config) ServiceIP() net.IP    { return nthIP(c.ServiceCIDR, 1) }
func (c Config) ClusterDNSIP() net.IP { return nthIP(c.ServiceCIDR, 10) }
func (c Config) APIServerURL() string { return "https://127.0.0.1:6443" }
func (c Config) EtcdURL() string      { return "https://127.0.0.1:2379" }
func (c Config) EtcdPeerURL() string  { return "https://127.0.0.1:2380" }

func nthIP(cidr string, n byte) net.IP {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil
	}
	ip := append(net.IP(nil), ipnet.IP.To4()...)
	ip[3] += n
	return ip
}

func run(name, text string, c Config) string {
	t := template.Must(template.New(name).Parse(text))
	var b bytes.Buffer
	if err := t.Execute(&b, c); err != nil {
		// The templates are constants exercised by the unit tests; failing here is a bug.
		panic(fmt.Sprintf("render %s: %v", name, err))
	}
	return b.String()
}

// Containerd renders containerd v2's config. version = 4 matters: with it a top-level
// [grpc] table is silently ignored, so the socket lives under the grpc server plugin.
// restrict_oom_score_adj is needed where root lacks CAP_SYS_RESOURCE (every sandbox fails
// with "can't get final child's PID from pipe" otherwise).
func Containerd(c Config) string {
	return run("containerd", `version = 4
root = '{{.Path "containerd" "root"}}'
state = '{{.Path "containerd" "state"}}'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{{.PauseImage}}'
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '{{.RegistryHostsDir}}'
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{{.CNIBinDir}}']
    conf_dir = '{{.CNIConfDir}}'
[plugins.'io.containerd.server.v1.grpc']
  address = '{{.ContainerdSocket}}'
`, c)
}

// RegistryHosts renders the hosts.toml that lets containerd pull from a plain-HTTP registry at
// hostPort (a loopback registry the machine runs): RegistryHostsDir()/<hostPort>/hosts.toml.
// Pull and resolve only: nothing in the cluster pushes. No TLS setting at all: with one
// (skip_verify, ca) containerd v2.4.2 tries HTTPS first and falls back to HTTP
// (core/remotes/docker/config/hosts.go), which is also what it does for a loopback registry
// without any hosts.toml; without one it speaks plain HTTP from the first request.
func RegistryHosts(hostPort string) string {
	return fmt.Sprintf(`# written by gatecheck: a plain-HTTP registry on this machine (--registry)
server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, hostPort)
}

// Kubelet renders the KubeletConfiguration. failCgroupV1: false because these machines
// have cgroup v1 hierarchies and the kubelet >= 1.35 exits on them otherwise; no cluster DNS
// runs, so clusterDNS points at an unused service address and resolvConf is empty.
// nodeStatusMaxImages -1: the suites find loaded images in the node's status.images (no
// registry to pull from), and with the default cap of 50, largest first, a small image such as
// the echo backend fell off the list once the machine's containerd store (kept across down/up,
// never garbage-collected here) held more: suites then refused to start.
func Kubelet(c Config) string {
	return run("kubelet", `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://{{.ContainerdSocket}}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: {{.Path "pki" "ca.crt"}}}
authorization:
  mode: Webhook
address: 0.0.0.0
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
clusterDNS: [{{.ClusterDNSIP}}]
clusterDomain: cluster.local
resolvConf: ""
podCIDR: {{.PodCIDR}}
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
syncFrequency: 10s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
nodeStatusMaxImages: -1
podLogsDir: {{.Path "pod-logs"}}
volumePluginDir: {{.Path "kubelet-plugins"}}
`, c)
}

// KubeProxy renders the KubeProxyConfiguration (iptables mode).
func KubeProxy(c Config) string {
	return run("kube-proxy", `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {{.Kubeconfig}}
mode: iptables
clusterCIDR: {{.ClusterCIDR}}
hostnameOverride: {{.NodeName}}
bindAddress: 0.0.0.0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, c)
}

// CNI renders the bridge network: one bridge, host-local IPAM with its data in the state
// dir, masquerade, portmap for hostPort.
func CNI(c Config) string {
	return run("cni", `{
  "cniVersion": "1.0.0",
  "name": "{{.NetworkName}}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "{{.Bridge}}",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "{{.PodCIDR}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "{{.Path "cni-ipam"}}"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, c)
}

// Component is one process of the cluster.
type Component struct {
	// Name names the process, its log file and its PID file.
	Name string
	// Argv is the full command line; Argv[0] is an absolute path.
	Argv []string
}

// Names of the components, in start order.
const (
	ContainerdName        = "containerd"
	EtcdName              = "etcd"
	APIServerName         = "kube-apiserver"
	ControllerManagerName = "kube-controller-manager"
	SchedulerName         = "kube-scheduler"
	KubeletName           = "kubelet"
	KubeProxyName         = "kube-proxy"
)

// Components returns every process in start order.
func Components(c Config) []Component {
	k := func(bin string) string { return filepath.Join(c.KubernetesBin, bin) }
	pki := func(f string) string { return c.Path("pki", f) }
	kubeconfig := c.Kubeconfig()
	return []Component{
		{Name: ContainerdName, Argv: []string{filepath.Join(c.ContainerdBin, "containerd"), "--config", c.ContainerdConfig()}},
		{Name: EtcdName, Argv: []string{filepath.Join(c.EtcdBin, "etcd"),
			"--name", "gatecheck", "--data-dir", c.Path("etcd"),
			"--listen-client-urls", c.EtcdURL(), "--advertise-client-urls", c.EtcdURL(),
			"--listen-peer-urls", c.EtcdPeerURL(), "--initial-advertise-peer-urls", c.EtcdPeerURL(),
			"--initial-cluster", "gatecheck=" + c.EtcdPeerURL(),
			// Client TLS with certificates from etcd's own CA only (as kubeadm): without it any
			// local user could write etcd, make themselves cluster-admin and, through a
			// privileged pod, root on this machine. Peers likewise, on loopback.
			"--cert-file", pki("etcd-server.crt"), "--key-file", pki("etcd-server.key"),
			"--client-cert-auth", "--trusted-ca-file", pki("etcd-ca.crt"),
			"--peer-cert-file", pki("etcd-peer.crt"), "--peer-key-file", pki("etcd-peer.key"),
			"--peer-client-cert-auth", "--peer-trusted-ca-file", pki("etcd-ca.crt"),
			// A disposable test cluster: durability is not worth the fsync latency on slow disks.
			"--unsafe-no-fsync"}},
		{Name: APIServerName, Argv: []string{k("kube-apiserver"),
			"--etcd-servers=" + c.EtcdURL(), "--etcd-cafile=" + pki("etcd-ca.crt"),
			"--etcd-certfile=" + pki("apiserver-etcd-client.crt"), "--etcd-keyfile=" + pki("apiserver-etcd-client.key"),
			"--advertise-address=" + c.NodeIP.String(), "--secure-port=6443",
			"--tls-cert-file=" + pki("apiserver.crt"), "--tls-private-key-file=" + pki("apiserver.key"),
			"--client-ca-file=" + pki("ca.crt"),
			"--service-cluster-ip-range=" + c.ServiceCIDR,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki("sa.pub"), "--service-account-signing-key-file=" + pki("sa.key"),
			"--authorization-mode=Node,RBAC", "--allow-privileged=true",
			"--kubelet-client-certificate=" + pki("admin.crt"), "--kubelet-client-key=" + pki("admin.key"),
			// Otherwise `kubectl logs` resolves the node name through the host's resolver: a DNS
			// query leaving the machine.
			"--kubelet-preferred-address-types=InternalIP"}},
		// --use-service-account-credentials=false: with true, the controller-manager gets or
		// creates a ServiceAccount and requests a token for each of its ~40 controllers, one
		// after another, before it starts any: 5.0 s on 2 cores (log: "Starting" 11:42:11.30,
		// deployment controller 11:42:16.34), on the path of every bring-up (the default
		// ServiceAccount and the first Deployment's Pods wait for it); with false, 0.09 s. The
		// controllers then act with the controller-manager's own credentials, which on this
		// disposable single-node test cluster are already cluster-admin.
		{Name: ControllerManagerName, Argv: []string{k("kube-controller-manager"),
			"--kubeconfig=" + kubeconfig,
			"--service-account-private-key-file=" + pki("sa.key"), "--root-ca-file=" + pki("ca.crt"),
			"--cluster-signing-cert-file=" + pki("ca.crt"), "--cluster-signing-key-file=" + pki("ca.key"),
			"--use-service-account-credentials=false", "--leader-elect=false",
			"--flex-volume-plugin-dir=" + c.Path("kcm-flex")}},
		{Name: SchedulerName, Argv: []string{k("kube-scheduler"), "--kubeconfig=" + kubeconfig, "--leader-elect=false"}},
		{Name: KubeletName, Argv: []string{k("kubelet"),
			"--config=" + c.KubeletConfig(), "--kubeconfig=" + kubeconfig,
			"--hostname-override=" + c.NodeName, "--node-ip=" + c.NodeIP.String(),
			"--root-dir=" + c.Path("kubelet"), "--cert-dir=" + c.Path("kubelet-pki"), "--v=2"}},
		{Name: KubeProxyName, Argv: []string{k("kube-proxy"), "--config=" + c.KubeProxyConfig()}},
	}
}

// Files returns every config file to write, path -> content.
func Files(c Config) map[string]string {
	return map[string]string{
		c.ContainerdConfig(): Containerd(c),
		c.KubeletConfig():    Kubelet(c),
		c.KubeProxyConfig():  KubeProxy(c),
		c.CNIConfig():        CNI(c),
	}
}
