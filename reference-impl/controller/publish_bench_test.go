package controller

import (
	"log/slog"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// BenchmarkPublishUnchanged is the per-reconcile cost of publishing a 1,000-route Gateway whose
// configuration did not change (encode + compare), next to translating it (the baseline); the
// ratio is printed by TestPublishVsTranslate.
func BenchmarkPublishUnchanged(b *testing.B) {
	in := syntheticInput(1000)
	out := translate.Translate(in)
	var snap *translate.GatewayResult
	for _, g := range out.Gateways {
		snap = g
	}
	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	if _, err := d.Publish(snap.Snapshot); err != nil {
		b.Fatal(err)
	}
	b.Run("translate", func(b *testing.B) {
		for b.Loop() {
			translate.Translate(in)
		}
	})
	b.Run("publish-unchanged", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.Publish(snap.Snapshot); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPublishVsTranslate prints how publishing an unchanged 1,000-route snapshot compares with
// translating it, measured in the same run.
func TestPublishVsTranslate(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement skipped in -short mode")
	}
	in := syntheticInput(1000)
	var snap *translate.GatewayResult
	for _, g := range translate.Translate(in).Gateways {
		snap = g
	}
	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	if _, err := d.Publish(snap.Snapshot); err != nil {
		t.Fatal(err)
	}
	tr := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			translate.Translate(in)
		}
	})
	pub := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			d.Publish(snap.Snapshot)
		}
	})
	t.Logf("1000 routes: translate %v/op, publish-unchanged %v/op, ratio publish/translate %.2f",
		time.Duration(tr.NsPerOp()), time.Duration(pub.NsPerOp()), float64(pub.NsPerOp())/float64(tr.NsPerOp()))
}
