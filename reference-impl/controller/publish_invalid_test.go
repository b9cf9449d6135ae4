package controller

import (
	"log/slog"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// TestPublishInvalid checks that an invalid snapshot (a translation bug) still fails Publish,
// although it is validated after the streams were woken, and that a valid one does not.
func TestPublishInvalid(t *testing.T) {
	t.Parallel()
	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	if _, err := d.Publish(snap("gw", 80)); err != nil {
		t.Fatalf("valid snapshot: got %v; want no error", err)
	}
	_, err := d.Publish(snap("gw", 0))
	if err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("snapshot with port 0: got error %v; want one naming the port", err)
	}
	// Publishing the same invalid content again must fail again, not pass as "unchanged".
	if _, err := d.Publish(snap("gw", 0)); err == nil {
		t.Errorf("same invalid snapshot again: got no error; want one")
	}
	d.Forget(types.NamespacedName{Namespace: "ns", Name: "gw"})
	if _, err := d.Publish(snap("gw", 0)); err == nil {
		t.Errorf("invalid snapshot after Forget: got no error; want one")
	}
}
