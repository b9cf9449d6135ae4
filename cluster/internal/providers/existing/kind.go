package existing

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// KindCluster is a kind cluster recognised from the API server's own state.
type KindCluster struct {
	// Name is the kind cluster's name (kind create cluster --name).
	Name string
	// NodeProvider is the engine kind created the nodes with (docker, podman, nerdctl), from
	// their providerIDs; "" when only the names say kind, and kind detects the engine.
	NodeProvider string
	// Nodes are the Kubernetes node names, sorted.
	Nodes []string
	// Evidence says how the cluster was recognised.
	Evidence string
}

// kindNodeName is kind's node naming: <cluster>-control-plane, <cluster>-worker, then
// <cluster>-worker2, ... (sigs.k8s.io/kind pkg/cluster/internal/create/actions/config and the
// providers' node naming).
func kindNodeName(cluster string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(cluster) + `-(control-plane|worker)[0-9]*$`)
}

// DetectKind says whether nodes are all the nodes of one kind cluster, and which, from what
// the API server holds. kind (v0.9.0 on) sets every node's spec.providerID to
// kind://<provider>/<cluster>/<node>; a kind cluster's kubeconfig context is kind-<cluster>.
// The providerIDs decide; the context name decides only where no node has a providerID (kind
// before v0.9.0) and every node is named as kind names them. When it is not kind, why says so.
func DetectKind(nodes []corev1.Node, contextName string) (kc KindCluster, ok bool, why string) {
	if len(nodes) == 0 {
		return kc, false, "the cluster has no nodes"
	}
	type id struct{ provider, cluster string }
	var ids []id
	var notKind []string
	for _, n := range nodes {
		kc.Nodes = append(kc.Nodes, n.Name)
		pid := n.Spec.ProviderID
		rest, isKind := strings.CutPrefix(pid, "kind://")
		if !isKind {
			if pid == "" {
				pid = "none"
			}
			notKind = append(notKind, fmt.Sprintf("%s (providerID %s)", n.Name, pid))
			continue
		}
		parts := strings.Split(rest, "/")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return kc, false, fmt.Sprintf("node %s: spec.providerID %q is not kind://<provider>/<cluster>/<node>", n.Name, n.Spec.ProviderID)
		}
		if parts[2] != n.Name {
			return kc, false, fmt.Sprintf("node %s: spec.providerID %q names another node", n.Name, n.Spec.ProviderID)
		}
		if i := (id{parts[0], parts[1]}); !slices.Contains(ids, i) {
			ids = append(ids, i)
		}
	}
	slices.Sort(kc.Nodes)
	ctxCluster, kindContext := strings.CutPrefix(contextName, "kind-")
	switch {
	case len(ids) > 1:
		var s []string
		for _, i := range ids {
			s = append(s, "kind://"+i.provider+"/"+i.cluster)
		}
		return kc, false, "the nodes' providerIDs name more than one kind cluster: " + strings.Join(s, ", ")
	case len(ids) == 1 && len(notKind) > 0:
		return kc, false, fmt.Sprintf("some nodes are kind cluster %s's, others are not: %s (kind's loader would reach only some nodes)", ids[0].cluster, strings.Join(notKind, ", "))
	case len(ids) == 1:
		kc.Name, kc.NodeProvider = ids[0].cluster, ids[0].provider
		kc.Evidence = fmt.Sprintf("every node's spec.providerID is kind://%s/%s/<node>", kc.NodeProvider, kc.Name)
		if kindContext && ctxCluster != kc.Name {
			kc.Evidence += fmt.Sprintf(" (the context %s names another; the nodes decide)", contextName)
		}
		return kc, true, ""
	case kindContext && ctxCluster != "":
		re := kindNodeName(ctxCluster)
		for _, n := range kc.Nodes {
			if !re.MatchString(n) {
				return kc, false, fmt.Sprintf("context %s looks like kind's, but no node has a kind:// providerID and node %s is not named as kind names cluster %s's nodes", contextName, n, ctxCluster)
			}
		}
		kc.Name = ctxCluster
		kc.Evidence = fmt.Sprintf("context %s and node names %s (no kind:// providerIDs: kind before v0.9.0)", contextName, strings.Join(kc.Nodes, ", "))
		return kc, true, ""
	}
	return kc, false, "no node has a kind:// providerID: " + strings.Join(notKind, ", ")
}

// kindState is what detection found, once per provider.
type kindState struct {
	cluster KindCluster
	// loadable says kind's loader reaches every node; why says otherwise.
	loadable bool
	why      string
	loader   KindLoader
}

// KindLoader is kind's image loading (cluster/internal/providers/kind.Loader).
type KindLoader interface {
	// Nodes lists the names of kind cluster name's nodes this machine's engine runs.
	Nodes(name string) ([]string, error)
	// LoadArchive imports a docker-archive tarball into every node of cluster name.
	LoadArchive(name, archive string) error
}

// detectKind reads the nodes and the context and, for a kind cluster, checks kind's loader on
// this machine reaches exactly those nodes (a kubeconfig can point at a kind cluster on
// another machine). Nothing here fails the run: a cluster that is not loadable is one images
// cannot be loaded into, as before.
func (p *Provider) detectKind(ctx context.Context) *kindState {
	if p.kind != nil {
		return p.kind
	}
	st := &kindState{}
	p.kind = st
	cs, err := p.client()
	if err != nil {
		st.why = err.Error()
		return st
	}
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		st.why = fmt.Sprintf("list nodes: %v", err)
		return st
	}
	kc, ok, why := DetectKind(list.Items, p.currentContext())
	if !ok {
		st.why = why
		return st
	}
	st.cluster = kc
	st.loader, err = p.newKindLoader(kc.NodeProvider)
	if err != nil {
		st.why = fmt.Sprintf("kind cluster %s (%s), but kind cannot load images here: %v", kc.Name, kc.Evidence, err)
		return st
	}
	names, err := st.loader.Nodes(kc.Name)
	if err != nil {
		st.why = fmt.Sprintf("kind cluster %s (%s), but kind cannot list its nodes on this machine: %v", kc.Name, kc.Evidence, err)
		return st
	}
	slices.Sort(names)
	if !slices.Equal(names, kc.Nodes) {
		st.why = fmt.Sprintf("kind cluster %s (%s), but this machine's %s runs its nodes %q, the API server lists %q (a cluster of the same name elsewhere?)",
			kc.Name, kc.Evidence, engineName(kc.NodeProvider), names, kc.Nodes)
		return st
	}
	st.loadable = true
	return st
}

func engineName(nodeProvider string) string {
	if nodeProvider == "" {
		return "container engine"
	}
	return nodeProvider
}

// currentContext is the context in use: --context's, else the kubeconfig's current one.
func (p *Provider) currentContext() string {
	if p.context != "" {
		return p.context
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: p.kubeconfig}
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).RawConfig()
	if err != nil {
		return ""
	}
	return raw.CurrentContext
}
