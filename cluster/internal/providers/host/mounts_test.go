package host

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMountsUnder(t *testing.T) {
	t.Parallel()
	info := `22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
100 22 0:50 / /var/lib/gatecheck/host/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw
101 22 0:51 / /var/lib/gatecheck/host/kubelet/pods/uid/volumes/kubernetes.io~projected/kube-api-access-x rw - tmpfs tmpfs rw
102 22 0:52 / /var/lib/gatecheck/hostile rw - tmpfs tmpfs rw
103 22 0:53 / /var/lib/gatecheck/host/with\040space rw - tmpfs tmpfs rw
`
	got := parseMountsUnder(info, "/var/lib/gatecheck/host")
	want := []string{
		"/var/lib/gatecheck/host/kubelet/pods/uid/volumes/kubernetes.io~projected/kube-api-access-x",
		"/var/lib/gatecheck/host/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs",
		"/var/lib/gatecheck/host/with space",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
