package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gatecheck/gatecheck/impls"
	"github.com/gatecheck/gatecheck/internal/command"
	"github.com/gatecheck/gatecheck/internal/wait"
)

// HelmFinder returns the path of the helm CLI to run; bundled asks for gatecheck's own build
// even when one is on PATH (install.helm.bundled). cmd/gatecheck passes images.HelmCLI, which
// builds helm from the Go module proxy when needed.
type HelmFinder func(ctx context.Context, bundled bool) (string, error)

// helmEnv blanks the HELM_KUBE* variables of gatecheck's environment for every helm command:
// each would make helm act on another context, API server or identity than the kubeconfig the
// run's own client uses (--kubeconfig overrides KUBECONFIG, not these).
var helmEnv = []string{"HELM_KUBECONTEXT=", "HELM_KUBETOKEN=", "HELM_KUBEASUSER=", "HELM_KUBEASGROUPS=",
	"HELM_KUBEAPISERVER=", "HELM_KUBECAFILE=", "HELM_KUBETLS_SERVER_NAME=", "HELM_KUBEINSECURE_SKIP_TLS_VERIFY=false"}

// helmState is what a helm install did, so that teardown removes exactly that.
type helmState struct {
	// bin is the helm CLI.
	bin string
	// installed says `helm install` of the release ran (it may have failed half-way and left
	// a failed release, which is still ours to remove).
	installed bool
	// createdNamespace says the release namespace did not exist and gatecheck created it.
	createdNamespace bool
}

// helmTarget is the run's cluster: its kubeconfig, whose current context is the one to use
// (with --context, the existing-cluster provider writes a copy with that context current).
func (ii *implInstaller) helmTarget() impls.HelmTarget {
	return impls.HelmTarget{Kubeconfig: ii.kubeconfig}
}

// installHelm installs the profile's chart as a new release. It refuses when a release of that
// name exists in the namespace (in any state): gatecheck never takes over, upgrades or later
// removes a release it did not install.
func (ii *implInstaller) installHelm(ctx context.Context) error {
	p := ii.profile
	h := p.Install.Helm
	find := ii.findHelm
	if find == nil {
		find = func(context.Context, bool) (string, error) { return exec.LookPath("helm") }
	}
	// Before anything is touched: the images' references can be unknown.
	run, err := ii.forRun(h)
	if err != nil {
		return fmt.Errorf("profile %s: %w", p.Name, err)
	}
	bin, err := find(ctx, h.Bundled)
	if err != nil {
		return fmt.Errorf("profile %s: install.helm: %w", p.Name, err)
	}
	ii.helm = &helmState{bin: bin}
	out, err := command.OutputDir(ctx, helmEnv, p.Dir, append([]string{bin}, h.ListArgs(ii.helmTarget())...)...)
	if err != nil {
		return fmt.Errorf("profile %s: install.helm: list existing releases: %w", p.Name, err)
	}
	if found, err := existingReleases(out); err != nil {
		return fmt.Errorf("profile %s: install.helm: %w", p.Name, err)
	} else if len(found) > 0 {
		return fmt.Errorf("profile %s: install.helm.release: release %s already exists in namespace %s (%s), installed before this run: gatecheck neither installs over nor removes a release it did not install; uninstall it (helm uninstall %s --namespace %s) or choose another install.helm.release",
			p.Name, h.Release, h.Namespace, strings.Join(found, ", "), h.Release, h.Namespace)
	}
	if err := ii.ensureNamespace(ctx, h.Namespace); err != nil {
		return fmt.Errorf("profile %s: install.helm.namespace: %w", p.Name, err)
	}
	args := run.InstallArgs(p.Dir, ii.helmTarget())
	fmt.Fprintf(ii.out, "  %s\n", command.Quote(append([]string{"helm"}, args...)))
	ii.helm.installed = true
	stop := wait.Progress("helm install "+h.Release, 10*time.Second, func(l string) { fmt.Fprintf(ii.out, "  %s\n", l) })
	err = ii.streamHelm(ctx, bin, args)
	stop()
	if err != nil {
		return fmt.Errorf("profile %s: install.helm: %w", p.Name, err)
	}
	return nil
}

// existingReleases reads `helm list --output json` (stdout only) into "name (status, chart)".
func existingReleases(out []byte) ([]string, error) {
	var rels []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Chart  string `json:"chart"`
	}
	if err := json.Unmarshal(out, &rels); err != nil {
		return nil, fmt.Errorf("read helm list --output json: %w (output %.200q)", err, out)
	}
	var found []string
	for _, r := range rels {
		found = append(found, fmt.Sprintf("status %s, chart %s", r.Status, r.Chart))
	}
	return found, nil
}

// ensureNamespace creates the release namespace when it is missing and records that it did; a
// namespace of an earlier run still terminating is waited for first.
func (ii *implInstaller) ensureNamespace(ctx context.Context, name string) error {
	cs, err := kubernetes.NewForConfig(ii.cfg)
	if err != nil {
		return err
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("namespace %s: %w", name, err)
	case ns.DeletionTimestamp != nil:
		fmt.Fprintf(ii.out, "  waiting for namespace %s, still terminating, to be gone\n", name)
		if err := ii.waitNamespaceGone(ctx, name); err != nil {
			return err
		}
	default:
		fmt.Fprintf(ii.out, "  namespace %s exists: the release goes into it, and it stays after the run\n", name)
		return nil
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "gatecheck"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	ii.helm.createdNamespace = true
	fmt.Fprintf(ii.out, "  created namespace %s (gatecheck's: removed with the release)\n", name)
	return nil
}

// waitNamespaceGone waits until the namespace no longer exists (a namespace takes its
// contents with it, so it can take a while), printing progress.
func (ii *implInstaller) waitNamespaceGone(ctx context.Context, name string) error {
	cs, err := kubernetes.NewForConfig(ii.cfg)
	if err != nil {
		return err
	}
	_, err = wait.For(ctx, "namespace "+name+" to be gone", 3*time.Minute, wait.Options{Out: ii.out}, func(ctx context.Context) (bool, string, error) {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, "gone", nil
		case err != nil:
			return false, "", fmt.Errorf("namespace %s: %w", name, err)
		}
		return false, "phase " + string(ns.Status.Phase), nil
	})
	return err
}

// uninstallHelm removes exactly what installHelm installed: the release (helm uninstall --wait),
// then, once the release is gone, the namespace if gatecheck created it. Nothing when the install never started, or was
// refused because the release existed before the run.
func (ii *implInstaller) uninstallHelm(ctx context.Context) error {
	hs, h := ii.helm, ii.profile.Install.Helm
	if hs == nil {
		return nil
	}
	var errs []string
	if hs.installed {
		args := h.UninstallArgs(ii.helmTarget())
		fmt.Fprintf(ii.out, "  %s\n", command.Quote(append([]string{"helm"}, args...)))
		stop := wait.Progress("helm uninstall "+h.Release, 10*time.Second, func(l string) { fmt.Fprintf(ii.out, "  %s\n", l) })
		err := ii.streamHelm(ctx, hs.bin, args)
		stop()
		if err != nil {
			// helm keeps its record of the release in the namespace: deleting it now would
			// forget the release and orphan its cluster-scoped objects, so it stays.
			errs = append(errs, fmt.Sprintf("install.helm: %v; namespace %s kept, so that `helm uninstall %s --namespace %s` can still remove the release",
				err, h.Namespace, h.Release, h.Namespace))
		} else {
			hs.installed = false
		}
	}
	if hs.createdNamespace && !hs.installed {
		err := ii.deleteNamespace(ctx, h.Namespace)
		if err != nil {
			errs = append(errs, fmt.Sprintf("install.helm.namespace %s (created by this run): %v", h.Namespace, err))
		} else {
			hs.createdNamespace = false
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("profile %s: %s", ii.profile.Name, strings.Join(errs, "; "))
	}
	return nil
}

func (ii *implInstaller) deleteNamespace(ctx context.Context, name string) error {
	cs, err := kubernetes.NewForConfig(ii.cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(ii.out, "  deleting namespace %s (created by this run)\n", name)
	if err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return ii.waitNamespaceGone(ctx, name)
}

// forRun is h as this run installs it: every install.helm.set value that is an image gatecheck
// built replaced by the reference it was pushed as (--registry), then install.helm.images'
// values set to the references the nodes get (pushed, else as built), so the chart runs
// gatecheck's images whatever its defaults say. A chart's defaults that install.helm.images
// does not name are not rewritten: gatecheck cannot know which values are images.
func (ii *implInstaller) forRun(h *impls.Helm) (*impls.Helm, error) {
	c := *h
	c.Set = slices.Clone(h.Set)
	for i, s := range c.Set {
		if to := ii.images.Get(string(s.Value)); to != string(s.Value) {
			fmt.Fprintf(ii.out, "  install.helm.set[%d] %s: %s, pushed as %s\n", i, s.Name, s.Value, to)
			c.Set[i].Value = impls.HelmValue(to)
		}
	}
	if len(h.Images) == 0 {
		return &c, nil
	}
	if ii.imageRefs == nil {
		return nil, fmt.Errorf("install.helm.images: this run cannot tell what the built images are called")
	}
	sets, err := h.ImageSets(func(name string) (string, error) {
		built, err := ii.imageRefs.Reference(name)
		if err != nil {
			return "", err
		}
		return ii.images.Get(built), nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		fmt.Fprintf(ii.out, "  install.helm.images: %s=%s\n", s.Name, s.Value)
	}
	c.Set = append(c.Set, sets...)
	return &c, nil
}

// streamHelm runs helm with its output shown as it comes, indented like the step's own lines.
func (ii *implInstaller) streamHelm(ctx context.Context, bin string, args []string) error {
	w := &indentWriter{w: ii.out}
	err := command.Stream(ctx, w, helmEnv, ii.profile.Dir, append([]string{bin}, args...)...)
	w.flush()
	return err
}

// indentWriter writes whole lines, each prefixed with two spaces.
type indentWriter struct {
	w    io.Writer
	part []byte
}

func (iw *indentWriter) Write(b []byte) (int, error) {
	iw.part = append(iw.part, b...)
	for {
		i := bytes.IndexByte(iw.part, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(iw.w, "  %s\n", iw.part[:i]); err != nil {
			return 0, err
		}
		iw.part = iw.part[i+1:]
	}
}

func (iw *indentWriter) flush() {
	if len(iw.part) > 0 {
		fmt.Fprintf(iw.w, "  %s\n", iw.part)
		iw.part = nil
	}
}
