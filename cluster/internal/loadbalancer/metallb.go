package loadbalancer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/cluster/images"
	"github.com/gatecheck/gatecheck/install"
	"github.com/gatecheck/gatecheck/internal/command"
	"github.com/gatecheck/gatecheck/internal/wait"
)

// Module and Version are the MetalLB release gatecheck builds and installs.
//
// v0.15.2, not v0.16.2: v0.16.2 requires github.com/metallb/frr-k8s v0.0.27, which the Go
// module proxy refuses (403 "This module version is not available"), and no frr-k8s version
// the proxy serves (up to v0.0.26) has the AsPathPrependPrefixes API v0.16.2 compiles against,
// so v0.16.2's controller and speaker cannot be built from the proxy. v0.15.2 builds with a
// plain `go install` under its own go.mod (frr-k8s v0.0.20).
const (
	Module  = "go.universe.tf/metallb"
	Version = "v0.15.2"
)

// Namespace is where metallb-native.yaml installs MetalLB.
const Namespace = "metallb-system"

// PoolName names the IPAddressPool (and L2Advertisement) gatecheck creates.
const PoolName = "gatecheck"

// Images are MetalLB's controller and, with speaker, its speaker, tagged as
// metallb-native.yaml references them (quay.io/metallb/<name>:<Version>, IfNotPresent), so the
// manifest is applied unchanged. Like upstream's Dockerfiles: the binary at /<name> on an
// empty base (theirs is distroless static; the manifest sets the user).
func Images(speaker bool) []images.Spec {
	spec := func(name string) images.Spec {
		return images.Spec{
			Name:     "metallb-" + name,
			Packages: []string{Module + "/" + name + "@" + Version},
			Tags:     []string{"quay.io/metallb/" + name + ":" + Version},
			Binary:   "/" + name,
			Required: true,
		}
	}
	out := []images.Spec{spec("controller")}
	if speaker {
		out = append(out, spec("speaker"))
	}
	return out
}

// Manifest returns MetalLB's config/manifests/metallb-native.yaml from the module cache
// (downloading the module if needed: the image build has usually done it already).
func Manifest(ctx context.Context) ([]byte, error) {
	out, err := command.OutputEnv(ctx, []string{"GOFLAGS=-mod=mod"}, "go", "-C", os.TempDir(), "mod", "download", "-json", Module+"@"+Version)
	if err != nil {
		return nil, fmt.Errorf("download MetalLB module: %w", err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return nil, fmt.Errorf("download MetalLB module: parse go mod download output: %w", err)
	}
	if mod.Error != "" || mod.Dir == "" {
		return nil, fmt.Errorf("download MetalLB module %s@%s: %s", Module, Version, mod.Error)
	}
	data, err := os.ReadFile(filepath.Join(mod.Dir, "config", "manifests", "metallb-native.yaml"))
	if err != nil {
		return nil, fmt.Errorf("MetalLB manifest: %w", err)
	}
	return data, nil
}

// Options say how MetalLB is installed.
type Options struct {
	// Manifest is metallb-native.yaml (Manifest's result).
	Manifest []byte
	// Pool is the address range LoadBalancer Services get addresses from: CIDRs or
	// "first-last" ranges, as IPAddressPool's spec.addresses takes them.
	Pool []string
	// Speaker runs the speaker DaemonSet and announces the pool in L2 mode (kind: the
	// runner reaches the kind network through ARP). Without it only the controller runs: it
	// assigns addresses and kube-proxy answers them on the node, and nothing is announced
	// to any network (the host cluster).
	Speaker bool
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

// Objects decodes the manifest and appends the pool objects: what Install applies, in order.
// Without Speaker the speaker DaemonSet is left out.
func Objects(o Options) (manifest, pool []install.Object, err error) {
	objs, err := install.Decode("metallb-native.yaml", o.Manifest)
	if err != nil {
		return nil, nil, err
	}
	for _, obj := range objs {
		if !o.Speaker && obj.Obj.GetKind() == "DaemonSet" && obj.Obj.GetName() == "speaker" {
			continue
		}
		if obj.Obj.GetKind() == "ValidatingWebhookConfiguration" {
			continue // see withoutWebhook
		}
		if err := withoutWebhook(obj.Obj); err != nil {
			return nil, nil, fmt.Errorf("MetalLB manifest %s %s: %w", obj.Obj.GetKind(), obj.Obj.GetName(), err)
		}
		if err := quickReadiness(obj.Obj); err != nil {
			return nil, nil, fmt.Errorf("MetalLB manifest %s %s: %w", obj.Obj.GetKind(), obj.Obj.GetName(), err)
		}
		manifest = append(manifest, obj)
	}
	if len(o.Pool) == 0 {
		return nil, nil, fmt.Errorf("MetalLB: field Pool is empty")
	}
	addrs := make([]any, len(o.Pool))
	for i, a := range o.Pool {
		addrs[i] = a
	}
	pool = append(pool, install.Object{Source: "gatecheck IPAddressPool", Obj: &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
		"metadata": map[string]any{"name": PoolName, "namespace": Namespace},
		// avoidBuggyIPs: no .0 or .255 addresses, which some clients treat as broadcast.
		"spec": map[string]any{"addresses": addrs, "avoidBuggyIPs": true},
	}}})
	if o.Speaker {
		pool = append(pool, install.Object{Source: "gatecheck L2Advertisement", Obj: &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
			"metadata": map[string]any{"name": PoolName, "namespace": Namespace},
			"spec":     map[string]any{"ipAddressPools": []any{PoolName}},
		}}})
	}
	return manifest, pool, nil
}

// quickReadiness shortens the readiness probe of MetalLB's controller and speaker: upstream's
// waits 10 s before the first probe and then probes every 10 s, while the controller serves
// /metrics about a second after it starts. Every gatecheck run brings its cluster up and
// waits for MetalLB, so those 10 s were a tenth of bring-up. Liveness is left as upstream
// wrote it (a slow liveness probe restarts nothing early).
func quickReadiness(obj *unstructured.Unstructured) error {
	if k := obj.GetKind(); k != "Deployment" && k != "DaemonSet" {
		return nil
	}
	containers, found, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	if err != nil || !found {
		return err
	}
	for i, c := range containers {
		cm, ok := c.(map[string]any)
		if !ok {
			return fmt.Errorf("spec.template.spec.containers[%d] is not an object", i)
		}
		probe, ok := cm["readinessProbe"].(map[string]any)
		if !ok {
			continue
		}
		probe["initialDelaySeconds"] = int64(1)
		probe["periodSeconds"] = int64(1)
	}
	return unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers")
}

// withoutWebhook runs MetalLB's controller with --webhook-mode=disabled (Objects also leaves out
// the ValidatingWebhookConfiguration). With its webhook on, the controller serves /metrics,
// which its readiness probe reads, only once its certificate rotator has written the webhook's
// serving certificate into a Secret AND the kubelet has refreshed that Secret's volume in the
// Pod, which it does on its periodic pod sync: the controller took 5 to 28 s to become Ready
// (28.6 s measured on 2026-12-03, probes failing "connection refused" the whole time), on the
// path of every cluster bring-up. The webhook only validates MetalLB objects, and the one
// gatecheck writes is its own pool, checked by TestObjects; MetalLB's CRDs still validate
// their schema. Without the webhook the controller is Ready about a second after it starts.
func withoutWebhook(obj *unstructured.Unstructured) error {
	if obj.GetKind() != "Deployment" || obj.GetName() != "controller" {
		return nil
	}
	containers, found, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	if err != nil || !found {
		return fmt.Errorf("field spec.template.spec.containers: missing or malformed (%v)", err)
	}
	for i, c := range containers {
		cm, ok := c.(map[string]any)
		if !ok || cm["name"] != "controller" {
			continue
		}
		args, _ := cm["args"].([]any)
		kept := []any{}
		for _, a := range args {
			if s, ok := a.(string); ok && strings.HasPrefix(s, "--webhook-mode") {
				continue
			}
			kept = append(kept, a)
		}
		cm["args"] = append(kept, "--webhook-mode=disabled")
		containers[i] = cm
		return unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers")
	}
	return fmt.Errorf("field spec.template.spec.containers: no container named controller")
}

// Install applies MetalLB server-side, waits for its controller (and speaker), then applies
// the pool. The images must already be loaded. Applying an installed MetalLB again is fine.
func Install(ctx context.Context, cfg *rest.Config, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	manifest, pool, err := Objects(o)
	if err != nil {
		return err
	}
	ap, err := install.NewApplier(cfg)
	if err != nil {
		return err
	}
	if err := ap.Apply(ctx, manifest); err != nil {
		return fmt.Errorf("install MetalLB %s: %w", Version, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	progress := wait.Options{ProgressEvery: 10 * time.Second, Out: logWriter{log}}
	if _, err := wait.For(ctx, "MetalLB controller Deployment "+Namespace+"/controller available", 3*time.Minute, progress, func(ctx context.Context) (bool, string, error) {
		d, err := cs.AppsV1().Deployments(Namespace).Get(ctx, "controller", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return available(d), fmt.Sprintf("%d/%d ready", d.Status.ReadyReplicas, deref(d.Spec.Replicas)), nil
	}); err != nil {
		return fmt.Errorf("MetalLB: %w (kubectl -n %s describe deploy/controller; kubectl -n %s logs deploy/controller)", err, Namespace, Namespace)
	}
	if o.Speaker {
		if _, err := wait.For(ctx, "MetalLB speaker DaemonSet "+Namespace+"/speaker ready", 3*time.Minute, progress, func(ctx context.Context) (bool, string, error) {
			d, err := cs.AppsV1().DaemonSets(Namespace).Get(ctx, "speaker", metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			s := d.Status
			return s.DesiredNumberScheduled > 0 && s.NumberReady == s.DesiredNumberScheduled, fmt.Sprintf("%d/%d ready", s.NumberReady, s.DesiredNumberScheduled), nil
		}); err != nil {
			return fmt.Errorf("MetalLB: %w (kubectl -n %s describe ds/speaker)", err, Namespace)
		}
	}
	// The API server may not serve MetalLB's CRDs at the very moment they were created: retry.
	if _, err := wait.For(ctx, "MetalLB IPAddressPool "+strings.Join(o.Pool, ",")+" applied", 2*time.Minute, progress, func(ctx context.Context) (bool, string, error) {
		if err := ap.Apply(ctx, pool); err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	}); err != nil {
		return fmt.Errorf("MetalLB: %w", err)
	}
	log.Info("MetalLB installed", "version", Version, "pool", strings.Join(o.Pool, ","), "speaker", o.Speaker, "took", time.Since(start).Round(10*time.Millisecond))
	return nil
}

// Installed reports whether a completed Install is in place: the pool exists (Install applies
// it last) and the controller is available.
func Installed(ctx context.Context, cfg *rest.Config) bool {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return false
	}
	gvr := schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"}
	if _, err := dyn.Resource(gvr).Namespace(Namespace).Get(ctx, PoolName, metav1.GetOptions{}); err != nil {
		return false
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	d, err := cs.AppsV1().Deployments(Namespace).Get(ctx, "controller", metav1.GetOptions{})
	return err == nil && available(d)
}

func available(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.ReadyReplicas >= deref(d.Spec.Replicas) && d.Status.ReadyReplicas > 0
}

func deref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// logWriter turns wait's progress lines into log lines.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
