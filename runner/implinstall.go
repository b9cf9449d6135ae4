package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/install"
	"github.com/gatecheck/gatecheck/internal/command"
	"github.com/gatecheck/gatecheck/internal/imagemap"
	"github.com/gatecheck/gatecheck/internal/wait"
)

var gatewayClassGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}

// implInstaller installs and removes one implementation profile.
type implInstaller struct {
	profile    *impls.Profile
	cfg        *rest.Config
	kubeconfig string
	out        io.Writer
	// applied is what the manifests install created, for teardown.
	applied []install.Object
	// findHelm finds the helm CLI (install.kind helm); nil looks on PATH.
	findHelm HelmFinder
	// helm is what the helm install did, for teardown (helminstall.go).
	helm *helmState
	// images maps built image references to pushed ones (--registry): the manifests are
	// rewritten with it, and scripts get it as $GATECHECK_IMAGE_MAP.
	images imagemap.Map
	// imageRefs says what a built image is called (install.helm.images).
	imageRefs ImageReferencer
}

func (ii *implInstaller) install(ctx context.Context) error {
	p := ii.profile
	switch p.Install.Kind {
	case impls.InstallManifests:
		files, err := p.ManifestFiles()
		if err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
		var objs []install.Object
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("profile %s: install.manifests: %w", p.Name, err)
			}
			o, err := install.Decode(f, data)
			if err != nil {
				return fmt.Errorf("profile %s: install.manifests: %w", p.Name, err)
			}
			objs = append(objs, o...)
		}
		for _, o := range objs {
			ii.images.ReplaceAll(o.Obj.Object)
		}
		a, err := install.NewApplier(ii.cfg)
		if err != nil {
			return err
		}
		// A namespace of ours still terminating (a run just before this one removed it) refuses
		// new objects: wait for it to go first.
		term, err := a.Terminating(ctx, objs)
		if err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
		if len(term) > 0 {
			fmt.Fprintf(ii.out, "  waiting for %s, still terminating, to be gone\n", term[0])
			if err := a.WaitGone(ctx, term, 3*time.Minute, ii.out); err != nil {
				return fmt.Errorf("profile %s: %w", p.Name, err)
			}
		}
		fmt.Fprintf(ii.out, "  applying %d objects from %d manifest files\n", len(objs), len(files))
		// Teardown removes what this install created: never a CRD the cluster already had.
		fresh, had, err := a.SplitExistingCRDs(ctx, objs)
		if err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
		for _, o := range had {
			fmt.Fprintf(ii.out, "  %s was already installed: applied, and left in place on teardown\n", o)
		}
		ii.applied = fresh
		if err := a.Apply(ctx, objs); err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
	case impls.InstallHelm:
		if err := ii.installHelm(ctx); err != nil {
			return err
		}
	case impls.InstallScript:
		s := p.Install.Script.Install
		if err := ii.command(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("profile %s: install.script: %w", p.Name, err)
		}
	case impls.InstallNone:
		fmt.Fprintf(ii.out, "  install.kind none: %s is already installed; checking its readiness and GatewayClass only (never removed)\n", p.Name)
	}
	if p.GatewayClass.Create {
		if err := ii.createGatewayClass(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (ii *implInstaller) command(ctx context.Context, name string, args ...string) error {
	env := []string{"KUBECONFIG=" + ii.kubeconfig, "GATECHECK_PROFILE_DIR=" + ii.profile.Dir, imagemap.Env + "=" + ii.images.String()}
	_, err := command.OutputDir(ctx, env, ii.profile.Dir, append([]string{name}, args...)...)
	return err
}

func (ii *implInstaller) createGatewayClass(ctx context.Context) error {
	p := ii.profile
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
		"metadata": map[string]any{"name": p.GatewayClass.Name},
		"spec":     map[string]any{"controllerName": p.GatewayClass.ControllerName},
	}}
	a, err := install.NewApplier(ii.cfg)
	if err != nil {
		return err
	}
	obj := install.Object{Source: "profile " + p.Name + " gatewayClass", Obj: u}
	ii.applied = append(ii.applied, obj)
	return a.Apply(ctx, []install.Object{obj})
}

// waitReady waits for the profile's Deployments and then for its GatewayClass to be Accepted.
func (ii *implInstaller) waitReady(ctx context.Context) error {
	p := ii.profile
	cs, err := kubernetes.NewForConfig(ii.cfg)
	if err != nil {
		return err
	}
	timeout := p.Readiness.Timeout.Or(3 * time.Minute)
	for _, d := range p.Readiness.Deployments {
		what := fmt.Sprintf("Deployment %s/%s to be available", d.Namespace, d.Name)
		_, err := wait.For(ctx, what, timeout, wait.Options{Out: ii.out}, func(ctx context.Context) (bool, string, error) {
			dep, err := cs.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, "not found yet", nil
			}
			if err != nil {
				return false, err.Error(), nil
			}
			return deploymentAvailable(dep), fmt.Sprintf("%d/%d replicas available", dep.Status.AvailableReplicas, replicas(dep)), nil
		})
		if err != nil {
			return fmt.Errorf("profile %s: readiness.deployments: %w", p.Name, err)
		}
	}
	dyn, err := dynamic.NewForConfig(ii.cfg)
	if err != nil {
		return err
	}
	if err := waitGatewayClassAccepted(ctx, dyn, p.GatewayClass.Name, p.GatewayClass.ControllerName, p.GatewayClass.AcceptTimeout.Or(2*time.Minute), ii.out); err != nil {
		return fmt.Errorf("profile %s: gatewayClass (acceptTimeout %s): %w", p.Name, p.GatewayClass.AcceptTimeout.Or(2*time.Minute), err)
	}
	return nil
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas >= replicas(d) && d.Status.UpdatedReplicas >= replicas(d)
}

// waitGatewayClassAccepted waits for Accepted=True with observedGeneration current. A class
// owned by another controller, or Accepted=False, fails at once with the reason.
func waitGatewayClassAccepted(ctx context.Context, dyn dynamic.Interface, name, controller string, timeout time.Duration, out io.Writer) error {
	what := fmt.Sprintf("GatewayClass %s to be Accepted by %s", name, controller)
	_, err := wait.For(ctx, what, timeout, wait.Options{Out: out}, func(ctx context.Context) (bool, string, error) {
		gc, err := dyn.Resource(gatewayClassGVR).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "GatewayClass not found (does the install create it? set gatewayClass.create: true otherwise)", nil
		}
		if err != nil {
			return false, err.Error(), nil
		}
		return gatewayClassState(gc, controller)
	})
	return err
}

func gatewayClassState(gc *unstructured.Unstructured, controller string) (bool, string, error) {
	got, _, _ := unstructured.NestedString(gc.Object, "spec", "controllerName")
	if got != controller {
		return false, "", fmt.Errorf("GatewayClass %s: spec.controllerName is %q; the profile says %q", gc.GetName(), got, controller)
	}
	conds, _, _ := unstructured.NestedSlice(gc.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Accepted" {
			continue
		}
		og, _ := m["observedGeneration"].(int64)
		status := fmt.Sprintf("Accepted=%v reason=%v", m["status"], m["reason"])
		if og != gc.GetGeneration() {
			return false, fmt.Sprintf("%s, not yet observed by a controller (observedGeneration %d, generation %d; is %s running?)",
				status, og, gc.GetGeneration(), controller), nil
		}
		switch m["status"] {
		case "True":
			return true, status, nil
		case "False":
			return false, status, fmt.Errorf("GatewayClass %s not accepted: reason %v: %v", gc.GetName(), m["reason"], m["message"])
		}
		return false, status, nil
	}
	return false, "no Accepted condition yet (is the controller running?)", nil
}

// removes says whether uninstall removes anything: not for an implementation someone else
// installed (install.kind none), a script without an uninstall, or manifests that created
// nothing new.
func (ii *implInstaller) removes() bool {
	switch p := ii.profile; p.Install.Kind {
	case impls.InstallNone:
		return false
	case impls.InstallHelm:
		return true
	case impls.InstallScript:
		return len(p.Install.Script.Uninstall) > 0
	}
	return len(ii.applied) > 0
}

func (ii *implInstaller) uninstall(ctx context.Context) error {
	p := ii.profile
	switch p.Install.Kind {
	case impls.InstallNone:
		return nil // installed by someone else: never ours to remove
	case impls.InstallHelm:
		return ii.uninstallHelm(ctx)
	case impls.InstallScript:
		if u := p.Install.Script.Uninstall; len(u) > 0 {
			return ii.command(ctx, u[0], u[1:]...)
		}
	}
	if len(ii.applied) == 0 {
		return nil
	}
	a, err := install.NewApplier(ii.cfg)
	if err != nil {
		return err
	}
	if err := a.Delete(ctx, ii.applied); err != nil {
		return err
	}
	// Deletion returns at once; wait until the objects are gone, so the cluster is left as it
	// was found and the next run can install again.
	return a.WaitGone(ctx, ii.applied, 3*time.Minute, ii.out)
}
