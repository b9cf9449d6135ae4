package kind

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The testdata outputs are reconstructions, not recordings: kind cannot run on the machines
// this project is developed on (no privileged containers), so `docker network inspect kind`,
// `podman network inspect kind` and `docker info --format '{{json .}}'` were written by hand
// in the documented formats (Docker Engine API NetworkResource and system.Info, Podman's
// netavark Network), with the values kind and the engines use: kind's IPv6 ULA subnet
// fc00:f853:ccd:e793::/64 listed before the IPv4 one, Docker's first bridge pool
// 172.18.0.0/16, Podman's 10.89.0.0/24. Replace them with real recordings when a machine
// with an engine runs the kind path.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPoolFromNetworkInspect(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		data    string
		want    string
		wantErr string
	}{
		{name: "docker", data: string(readTestdata(t, "docker-network-inspect-kind.json")), want: "172.18.255.200-172.18.255.250"},
		{name: "podman", data: string(readTestdata(t, "podman-network-inspect-kind.json")), want: "10.89.0.200-10.89.0.250"},
		// The IPAM of a real kind network on Docker as its user recorded it
		// (https://github.com/Kuadrant/kuadrant-operator/pull/418, 2024-02-09): IPv4 listed
		// first, then kind's IPv6 ULA; the reconstruction above lists them the other way round.
		{name: "docker, recorded order", data: `[{"Name":"kind","Scope":"local","Driver":"bridge","EnableIPv6":true,` +
			`"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"},` +
			`{"Subnet":"fc00:f853:ccd:e793::/64","Gateway":"fc00:f853:ccd:e793::1"}]},"Containers":{},` +
			`"Options":{"com.docker.network.bridge.enable_ip_masquerade":"true","com.docker.network.driver.mtu":"1500"},"Labels":{}}]`,
			want: "172.18.255.200-172.18.255.250"},
		{name: "/20 subnet: its last /24", data: `[{"Name":"kind","IPAM":{"Config":[{"Subnet":"192.168.32.0/20"}]}}]`, want: "192.168.47.200-192.168.47.250"},
		{name: "IPv6 only", data: `[{"Name":"kind","IPAM":{"Config":[{"Subnet":"fc00:f853:ccd:e793::/64"}]}}]`, wantErr: "no IPv4 subnet"},
		{name: "subnet too small", data: `[{"Name":"kind","IPAM":{"Config":[{"Subnet":"172.18.0.0/25"}]}}]`, wantErr: "smaller than a /24"},
		{name: "container inside the range", data: `[{"Name":"kind","IPAM":{"Config":[{"Subnet":"10.89.0.0/24"}]},"Containers":{"x":{"Name":"busy","IPv4Address":"10.89.0.210/24"}}}]`, wantErr: "container busy has 10.89.0.210"},
		{name: "no such network", data: `[]`, wantErr: "describes 0 networks"},
		{name: "not JSON", data: `Error response from daemon: network kind not found`, wantErr: "parse network inspect output"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := PoolFromNetworkInspect([]byte(c.data))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestReachFromEngineInfo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, goos, info string
		want             Reach
	}{
		{"Docker Engine on Linux: the kind bridge is local", "linux", "docker-info-engine-linux.json", ReachAddress},
		{"Docker Desktop on macOS", "darwin", "docker-info-desktop.json", ReachPortForward},
		{"Docker Desktop for Linux: still a VM", "linux", "docker-info-desktop.json", ReachPortForward},
		{"rootless Docker on Linux", "linux", "docker-info-rootless.json", ReachPortForward},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, why, err := ReachFromEngineInfo(c.goos, readTestdata(t, c.info))
			if err != nil || got != c.want {
				t.Fatalf("got %q (%s), %v; want %q", got, why, err, c.want)
			}
		})
	}
	if _, _, err := ReachFromEngineInfo("linux", []byte("Cannot connect to the Docker daemon")); err == nil {
		t.Error("unparsable docker info: got nil error")
	}
}
