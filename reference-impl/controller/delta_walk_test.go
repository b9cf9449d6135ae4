package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/incremental"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
	"github.com/gatecheck/gatecheck/reference-impl/proxy/delivery"
	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// TestDeltaWalkThroughRealProxy is the delta protocol's differential test end to end: random
// HTTPRoute creations, changes and deletions (and now and then a Gateway change: a listener
// added or removed, a hostname changed) go through what a reconcile does
// (incremental.Translator: only the changed routes when only routes changed, else a whole
// translation), Delivery.PublishRoutes, the delivery server, the proxy's delivery client and
// the real proxy. After every step, once the proxy acknowledged the version, its configuration
// must equal the snapshot translate.Translate of the same input gives.
func TestDeltaWalkThroughRealProxy(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(17, 1))
	in := syntheticInput(20)
	port := freePort(t)
	gw := in.Gateways[0]
	gw.Spec.Listeners[0].Port = gwv1.PortNumber(port)
	key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	template := in.HTTPRoutes[0].DeepCopy()

	d := NewDelivery(slog.New(slog.DiscardHandler), nil)
	ca := mustCA(t)
	srv := tlsDelivery(t, d, ca)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1"})
	t.Cleanup(func() { p.Close(context.Background()) })

	tr := incremental.New()
	publish := func(out *translate.Output, changed []ir.RouteKey) int64 {
		t.Helper()
		res := out.Gateways[key]
		if res == nil {
			return 0 // the Gateway's listeners did not change
		}
		if !res.Valid {
			t.Fatalf("gateway invalid: %s", res.Invalid)
		}
		v, err := d.PublishRoutes(res.Snapshot, changed)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		return v
	}
	publish(tr.Translate(in), nil)
	c := &delivery.Client{BaseURL: srv.URL, Gateway: ir.NamespacedName{Namespace: key.Namespace, Name: key.Name}, Proxy: "pod-a",
		HTTP: proxyClient(t, ca, key), MinBackoff: 10 * time.Millisecond}
	go c.Run(ctx, p)

	serial := 0
	hostnames := [][]gwv1.Hostname{nil, {"a.example"}, {"b.example", "*.wild.example"}, {"*.wild.example"}}
	draw := func(r *gwv1.HTTPRoute) {
		r.Spec.Hostnames = hostnames[rng.IntN(len(hostnames))]
		r.Spec.Rules[0].Matches[0].Path.Value = ptr.To(fmt.Sprintf("/p%d", rng.IntN(3)))
		r.Spec.Rules[0].BackendRefs[0].Name = []gwv1.ObjectName{"echo", "missing"}[rng.IntN(2)]
		if rng.IntN(4) == 0 {
			r.Spec.ParentRefs[0].SectionName = ptr.To[gwv1.SectionName]("extra")
		} else {
			r.Spec.ParentRefs[0].SectionName = nil
		}
	}
	extraPort := freePort(t)
	deltas := 0
	for step := range 60 {
		var changes []incremental.RouteChange
		gatewayChanged := step%10 == 9
		if gatewayChanged {
			ls := gw.Spec.Listeners[:1]
			if len(gw.Spec.Listeners) == 1 {
				ls = append(ls, gwv1.Listener{Name: "extra", Port: gwv1.PortNumber(extraPort), Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.wild.example")})
			}
			gw = gw.DeepCopy()
			gw.Spec.Listeners = ls
			gw.Generation++
			in.Gateways[0] = gw
		}
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(in.HTTPRoutes) + 1)
			switch {
			case i == len(in.HTTPRoutes) || len(in.HTTPRoutes) < 5: // create
				serial++
				r := template.DeepCopy()
				r.ObjectMeta = metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("walk-%03d", serial), UID: types.UID(fmt.Sprintf("uid-walk-%d", serial)), Generation: 1,
					CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 2, 0, 0, rng.IntN(20), 0, time.UTC))}
				draw(r)
				in.HTTPRoutes = append(in.HTTPRoutes, r)
				changes = append(changes, incremental.RouteChange{Kind: "HTTPRoute", Key: types.NamespacedName{Namespace: r.Namespace, Name: r.Name}, Object: r})
			case rng.IntN(3) == 0: // delete
				old := in.HTTPRoutes[i]
				in.HTTPRoutes = append(in.HTTPRoutes[:i:i], in.HTTPRoutes[i+1:]...)
				changes = append(changes, incremental.RouteChange{Kind: "HTTPRoute", Key: types.NamespacedName{Namespace: old.Namespace, Name: old.Name}})
			default: // change
				r := in.HTTPRoutes[i].DeepCopy()
				draw(r)
				r.Generation++
				in.HTTPRoutes[i] = r
				changes = append(changes, incremental.RouteChange{Kind: "HTTPRoute", Key: types.NamespacedName{Namespace: r.Namespace, Name: r.Name}, Object: r})
			}
		}
		var out *translate.Output
		ok := false
		if !gatewayChanged {
			out, ok = tr.Routes(in, changes)
		}
		// As Reconcile: after an incremental translation only the changed routes are
		// compared with what was published.
		var keys []ir.RouteKey
		if ok {
			for _, c := range changes {
				keys = append(keys, ir.RouteKey{Kind: ir.RouteKind(c.Kind), Namespace: c.Key.Namespace, Name: c.Key.Name})
			}
		} else {
			out = tr.Translate(in)
		}
		before := p.Version()
		v := publish(out, keys)
		if v == 0 || v == before {
			continue
		}
		deltas++
		if ok, msg := d.WaitAcked(ctx, key, []string{"pod-a"}, 10*time.Second); !ok {
			t.Fatalf("step %d: version %d not acknowledged: %s", step, v, msg)
		}
		want := translate.Translate(in).Gateways[key].Snapshot
		want.Version = v
		if diff := cmp.Diff(snapshotJSON(t, want), snapshotJSON(t, p.Config())); diff != "" {
			t.Fatalf("step %d: the proxy's configuration after deltas differs from a full translation (-want +got):\n%s", step, diff)
		}
	}
	if deltas < 40 {
		t.Fatalf("only %d of 60 steps published a new version; the walk is broken", deltas)
	}
}

func snapshotJSON(t *testing.T, s *ir.Snapshot) string {
	t.Helper()
	s.Schema = ir.SchemaVersion
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
