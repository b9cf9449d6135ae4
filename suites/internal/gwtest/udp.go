package gwtest

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// udpOnlyPort reports whether every listener of gw on port is a UDP listener: a TCP connect
// says nothing about those (the udp suite converges on answered flows instead).
func udpOnlyPort(gw *unstructured.Unstructured, port int) bool {
	ls, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	found := false
	for _, l := range ls {
		m, _ := l.(map[string]any)
		p, _, _ := unstructured.NestedInt64(m, "port")
		if int(p) != port {
			continue
		}
		proto, _, _ := unstructured.NestedString(m, "protocol")
		if proto != "UDP" {
			return false
		}
		found = true
	}
	return found
}
