package gwtest

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestUDPOnlyPort(t *testing.T) {
	gw := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"listeners": []any{
		map[string]any{"name": "u", "protocol": "UDP", "port": int64(9100)},
		map[string]any{"name": "t", "protocol": "TCP", "port": int64(9000)},
		map[string]any{"name": "both-u", "protocol": "UDP", "port": int64(53)},
		map[string]any{"name": "both-t", "protocol": "TCP", "port": int64(53)},
	}}}}
	for port, want := range map[int]bool{9100: true, 9000: false, 53: false, 1: false} {
		if got := udpOnlyPort(gw, port); got != want {
			t.Errorf("udpOnlyPort(%d) = %v; want %v", port, got, want)
		}
	}
}
