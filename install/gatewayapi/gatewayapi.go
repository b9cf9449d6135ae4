// Package gatewayapi installs the Gateway API CRDs of the pinned bundle version (embedded, no
// network) with server-side apply, and checks what a cluster already has.
package gatewayapi

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/gatecheck/gatecheck/install"
	"github.com/gatecheck/gatecheck/internal/version"
	"github.com/gatecheck/gatecheck/internal/wait"
)

//go:embed crds/standard/*.yaml crds/experimental/*.yaml
var crds embed.FS

const (
	bundleVersionAnnotation = "gateway.networking.k8s.io/bundle-version"
	channelAnnotation       = "gateway.networking.k8s.io/channel"
	group                   = "gateway.networking.k8s.io"
)

// Channels are the release channels whose CRDs are embedded.
var Channels = []string{"standard", "experimental"}

// Manifests returns the decoded CRDs (and the safe-upgrades admission policy) of channel, CRDs
// first so the policy never judges its own install.
func Manifests(channel string) ([]install.Object, error) {
	dir := path.Join("crds", channel)
	entries, err := fs.ReadDir(crds, dir)
	if err != nil {
		return nil, fmt.Errorf("gateway API channel %q: unknown (want one of %s)", channel, strings.Join(Channels, ", "))
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Slice(names, func(i, j int) bool {
		vi, vj := strings.Contains(names[i], "vap_"), strings.Contains(names[j], "vap_")
		if vi != vj {
			return vj
		}
		return names[i] < names[j]
	})
	var out []install.Object
	for _, n := range names {
		data, err := crds.ReadFile(path.Join(dir, n))
		if err != nil {
			return nil, err
		}
		objs, err := install.Decode(n, data)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// Installed describes the Gateway API CRDs found in a cluster.
type Installed struct {
	// Version and Channel are empty when no Gateway API CRD is installed.
	Version string
	Channel string
	CRDs    []string
}

// Inspect reads the bundle version and channel of the Gateway API CRDs in the cluster. Mixed
// versions or channels are an error naming the CRDs, as the upstream suite refuses them too.
func Inspect(ctx context.Context, cfg *rest.Config) (Installed, error) {
	cs, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return Installed{}, fmt.Errorf("apiextensions client: %w", err)
	}
	list, err := cs.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
	if err != nil {
		return Installed{}, fmt.Errorf("list CRDs: %w", err)
	}
	return inspect(list.Items)
}

func inspect(items []apiextensionsv1.CustomResourceDefinition) (Installed, error) {
	var in Installed
	for _, c := range items {
		if c.Spec.Group != group {
			continue
		}
		v, ch := c.Annotations[bundleVersionAnnotation], c.Annotations[channelAnnotation]
		in.CRDs = append(in.CRDs, c.Name)
		if in.Version == "" {
			in.Version, in.Channel = v, ch
			continue
		}
		if v != in.Version || ch != in.Channel {
			return in, fmt.Errorf("CRD %s is Gateway API %s/%s but others are %s/%s: the cluster mixes bundles; remove them or use a fresh cluster",
				c.Name, v, ch, in.Version, in.Channel)
		}
	}
	return in, nil
}

// Install applies the channel's CRDs of the pinned version and waits until each is
// Established. A cluster that already has a different Gateway API bundle is refused with an
// error saying which, since the upstream suite only runs on its own version.
func Install(ctx context.Context, cfg *rest.Config, channel string, out io.Writer) error {
	objs, err := Manifests(channel)
	if err != nil {
		return err
	}
	have, err := Inspect(ctx, cfg)
	if err != nil {
		return err
	}
	if have.Version != "" && (have.Version != version.GatewayAPIVersion || have.Channel != channel) {
		return fmt.Errorf("cluster has Gateway API CRDs %s (%s channel); gatecheck needs %s (%s channel): "+
			"use a fresh cluster or remove the CRDs (kubectl delete crd %s)", have.Version, have.Channel,
			version.GatewayAPIVersion, channel, strings.Join(have.CRDs, " "))
	}
	a, err := install.NewApplier(cfg)
	if err != nil {
		return err
	}
	if out != nil {
		fmt.Fprintf(out, "installing Gateway API %s CRDs (%s channel, server-side apply)\n", version.GatewayAPIVersion, channel)
	}
	if err := a.Apply(ctx, objs); err != nil {
		return fmt.Errorf("install Gateway API CRDs: %w", err)
	}
	cs, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var names []string
	for _, o := range objs {
		if o.Obj.GetKind() == "CustomResourceDefinition" {
			names = append(names, o.Obj.GetName())
		}
	}
	_, err = wait.For(ctx, fmt.Sprintf("%d Gateway API CRDs to be Established", len(names)), 2*time.Minute, wait.Options{Out: out},
		func(ctx context.Context) (bool, string, error) {
			pending := 0
			for _, n := range names {
				c, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, n, metav1.GetOptions{})
				if err != nil || !established(c) {
					pending++
				}
			}
			return pending == 0, fmt.Sprintf("%d/%d established", len(names)-pending, len(names)), nil
		})
	return err
}

func established(c *apiextensionsv1.CustomResourceDefinition) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
