package render

import (
	"encoding/json"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/cluster/internal/providers/host/pki"
)

func testConfig() Config {
	return Config{
		StateDir:      "/var/lib/gatecheck/host",
		KubernetesBin: "/cache/kubernetes/v1.37.2/bin",
		ContainerdBin: "/cache/containerd/v2.4.2/bin",
		EtcdBin:       "/cache/etcd/v3.6.4/bin",
		NodeIP:        net.ParseIP("192.0.2.10"),
	}.Defaults()
}

func TestContainerdConfig(t *testing.T) {
	t.Parallel()
	var got map[string]any
	if _, err := toml.Decode(Containerd(testConfig()), &got); err != nil {
		t.Fatalf("containerd config is not TOML: %v", err)
	}
	plugins := got["plugins"].(map[string]any)
	lookup := func(path ...string) any {
		var cur any = plugins
		for _, p := range path {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[p]
		}
		return cur
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"version", got["version"], int64(4)},
		{"grpc address under the server plugin", lookup("io.containerd.server.v1.grpc", "address"), "/var/lib/gatecheck/host/containerd/containerd.sock"},
		{"restrict_oom_score_adj", lookup("io.containerd.cri.v1.runtime", "restrict_oom_score_adj"), true},
		{"pinned sandbox image", lookup("io.containerd.cri.v1.images", "pinned_images", "sandbox"), "gatecheck.dev/pause:v1"},
		{"cgroupfs", lookup("io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options", "SystemdCgroup"), false},
		{"cni conf dir", lookup("io.containerd.cri.v1.runtime", "cni", "conf_dir"), "/var/lib/gatecheck/host/cni/net.d"},
		{"root in state dir", got["root"], "/var/lib/gatecheck/host/containerd/root"},
		{"registry hosts dir (--registry)", lookup("io.containerd.cri.v1.images", "registry", "config_path"), "/var/lib/gatecheck/host/containerd/certs.d"},
		{"no top-level grpc (ignored by version 4)", got["grpc"], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegistryHosts(t *testing.T) {
	t.Parallel()
	var got map[string]any
	if _, err := toml.Decode(RegistryHosts("127.0.0.1:5000"), &got); err != nil {
		t.Fatalf("hosts.toml is not TOML: %v", err)
	}
	want := map[string]any{
		"server": "http://127.0.0.1:5000",
		"host": map[string]any{"http://127.0.0.1:5000": map[string]any{
			"capabilities": []any{"pull", "resolve"},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hosts.toml (-want +got):\n%s", diff)
	}
}

func TestKubeletConfig(t *testing.T) {
	t.Parallel()
	var got map[string]any
	if err := yaml.Unmarshal([]byte(Kubelet(testConfig())), &got); err != nil {
		t.Fatalf("kubelet config is not YAML: %v", err)
	}
	want := map[string]any{
		"kind":                     "KubeletConfiguration",
		"failCgroupV1":             false,
		"failSwapOn":               false,
		"cgroupDriver":             "cgroupfs",
		"containerRuntimeEndpoint": "unix:///var/lib/gatecheck/host/containerd/containerd.sock",
		"resolvConf":               "",
		"clusterDNS":               []any{"10.0.0.10"},
		"podCIDR":                  "10.244.0.0/24",
		"readOnlyPort":             float64(0),
		"nodeStatusMaxImages":      float64(-1),
	}
	for k, w := range want {
		t.Run(k, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(w, got[k]); diff != "" {
				t.Errorf("kubelet %s (-want +got):\n%s", k, diff)
			}
		})
	}
}

func TestKubeProxyConfig(t *testing.T) {
	t.Parallel()
	var got map[string]any
	if err := yaml.Unmarshal([]byte(KubeProxy(testConfig())), &got); err != nil {
		t.Fatalf("kube-proxy config is not YAML: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"kubeconfig": "/var/lib/gatecheck/host/pki/admin.kubeconfig"}, got["clientConnection"]); diff != "" {
		t.Errorf("clientConnection (-want +got):\n%s", diff)
	}
	if got["mode"] != "iptables" || got["clusterCIDR"] != "10.244.0.0/16" || got["hostnameOverride"] != "gatecheck-node" {
		t.Errorf("mode, clusterCIDR, hostnameOverride = %v, %v, %v; want iptables, 10.244.0.0/16, gatecheck-node", got["mode"], got["clusterCIDR"], got["hostnameOverride"])
	}
}

func TestCNIConfig(t *testing.T) {
	t.Parallel()
	var got struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPAM   struct {
				Ranges  [][]struct{ Subnet string } `json:"ranges"`
				DataDir string                      `json:"dataDir"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(CNI(testConfig())), &got); err != nil {
		t.Fatalf("CNI config is not JSON: %v", err)
	}
	if got.Name != "gatecheck" || len(got.Plugins) != 2 {
		t.Fatalf("name, plugins = %q, %d; want gatecheck, 2", got.Name, len(got.Plugins))
	}
	b := got.Plugins[0]
	if b.Type != "bridge" || b.Bridge != "gatecheck0" || b.IPAM.Ranges[0][0].Subnet != "10.244.0.0/24" || b.IPAM.DataDir != "/var/lib/gatecheck/host/cni-ipam" {
		t.Errorf("bridge plugin = %+v; want bridge gatecheck0 on 10.244.0.0/24 with IPAM data in the state dir", b)
	}
}

func TestComponents(t *testing.T) {
	t.Parallel()
	comps := Components(testConfig())
	var names []string
	for _, c := range comps {
		names = append(names, c.Name)
		if !strings.HasPrefix(c.Argv[0], "/cache/") {
			t.Errorf("%s argv[0] = %q; want a pinned binary from the cache", c.Name, c.Argv[0])
		}
	}
	wantOrder := []string{"containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}
	if diff := cmp.Diff(wantOrder, names); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
	api := comps[2].Argv
	for _, flag := range []string{"--kubelet-preferred-address-types=InternalIP", "--advertise-address=192.0.2.10", "--service-cluster-ip-range=10.0.0.0/24"} {
		if !slices.Contains(api, flag) {
			t.Errorf("kube-apiserver argv lacks %s: %v", flag, api)
		}
	}
	if !slices.Contains(comps[5].Argv, "--node-ip=192.0.2.10") {
		t.Errorf("kubelet argv lacks --node-ip=192.0.2.10: %v", comps[5].Argv)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"defaults are valid", func(*Config) {}, ""},
		{"relative state dir", func(c *Config) { c.StateDir = "state" }, "field StateDir"},
		{"no node ip", func(c *Config) { c.NodeIP = nil }, "field NodeIP"},
		{"ipv6 node ip", func(c *Config) { c.NodeIP = net.ParseIP("2001:db8::1") }, "field NodeIP"},
		{"bad service cidr", func(c *Config) { c.ServiceCIDR = "10.0.0.0" }, "field ServiceCIDR"},
		{"pod cidr outside cluster cidr", func(c *Config) { c.PodCIDR = "10.99.0.0/24" }, "field PodCIDR"},
		{"bridge name too long", func(c *Config) { c.Bridge = "a-very-long-bridge" }, "field Bridge"},
		{"no kubernetes bin", func(c *Config) { c.KubernetesBin = "" }, "field KubernetesBin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDerivedAddresses(t *testing.T) {
	t.Parallel()
	c := testConfig()
	if got := c.ServiceIP().String(); got != "10.0.0.1" {
		t.Errorf("ServiceIP = %s; want 10.0.0.1", got)
	}
	if got := c.ClusterDNSIP().String(); got != "10.0.0.10" {
		t.Errorf("ClusterDNSIP = %s; want 10.0.0.10", got)
	}
}

func TestEnvSetsGoGCUnlessOff(t *testing.T) {
	t.Parallel()
	if got := (Config{}).Defaults().Env(); !slices.Equal(got, []string{"GOGC=" + DefaultGoGC, "GOMEMLIMIT=" + DefaultGoMemLimit}) {
		t.Errorf("default Env = %v; want GOGC=%s and GOMEMLIMIT=%s", got, DefaultGoGC, DefaultGoMemLimit)
	}
	if got := (Config{GoGC: "200"}).Defaults().Env(); !slices.Equal(got, []string{"GOGC=200", "GOMEMLIMIT=" + DefaultGoMemLimit}) {
		t.Errorf("Env with GoGC 200 = %v", got)
	}
	if got := (Config{GoGC: "off"}).Defaults().Env(); got != nil {
		t.Errorf("Env with GoGC off = %v; want none (Go's defaults)", got)
	}
}

// TestEtcdTLSFlagsNameFilesThePKIWrites: every PKI file etcd and the API server are given
// exists after pki.Ensure (a misspelt name would only show at bring-up), and etcd speaks
// only TLS with client certificates required, on clients and peers.
func TestEtcdTLSFlagsNameFilesThePKIWrites(t *testing.T) {
	t.Parallel()
	c := testConfig()
	c.StateDir = t.TempDir()
	if _, err := pki.Ensure(pki.Options{Dir: c.PKIDir(), NodeIP: c.NodeIP, ServiceIP: c.ServiceIP(), Server: c.APIServerURL(), ClusterName: "test"}); err != nil {
		t.Fatal(err)
	}
	comps := Components(c)
	etcd, api := comps[1].Argv, comps[2].Argv
	for _, argv := range [][]string{etcd, api} {
		for _, a := range argv {
			if _, v, ok := strings.Cut(a, "="); ok {
				a = v
			}
			if strings.HasPrefix(a, c.PKIDir()+"/") {
				if _, err := os.Stat(a); err != nil {
					t.Errorf("%s names %s, which pki.Ensure did not write: %v", argv[0], a, err)
				}
			}
		}
	}
	for _, flag := range []string{"--client-cert-auth", "--peer-client-cert-auth", "--trusted-ca-file", "--peer-trusted-ca-file", "--cert-file", "--key-file", "--peer-cert-file", "--peer-key-file"} {
		if !slices.Contains(etcd, flag) {
			t.Errorf("etcd argv lacks %s: %v", flag, etcd)
		}
	}
	for _, a := range etcd {
		if strings.Contains(a, "http://") {
			t.Errorf("etcd argv has a plaintext URL %q; want https only", a)
		}
	}
	for _, prefix := range []string{"--etcd-servers=https://127.0.0.1:2379", "--etcd-cafile=", "--etcd-certfile=", "--etcd-keyfile="} {
		if !slices.ContainsFunc(api, func(a string) bool { return strings.HasPrefix(a, prefix) }) {
			t.Errorf("kube-apiserver argv lacks %s...: %v", prefix, api)
		}
	}
}
