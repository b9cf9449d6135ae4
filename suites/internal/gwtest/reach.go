package gwtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/gatecheck/gatecheck/impls"
)

// Reach modes (impls.ReachMode; suiteenv passes them as strings).
const (
	ReachStatusAddress = string(impls.ReachStatusAddress)
	ReachNodePort      = string(impls.ReachNodePort)
	ReachPortForward   = string(impls.ReachPortForward)
)

// Gateway is a Gateway as the runner reaches it under the profile's reach mode: suites dial
// Addr(listener port) and never the status address directly, so that one suite runs
// unchanged against a Gateway whose address the runner cannot route to.
type Gateway struct {
	Namespace, Name string
	// Address is status.addresses[0].value ("" when the implementation publishes none and
	// the reach mode does not need it).
	Address string
	// Mode is the reach mode the addresses were resolved for.
	Mode string
	// addrs maps a listener port to the host:port to dial; nil means Address on any port.
	addrs map[int]string
}

// Direct is a Gateway reached at addr on every port (reach mode status-address, or a local
// stand-in in unit tests).
func Direct(addr string) *Gateway { return &Gateway{Address: addr, Mode: ReachStatusAddress} }

// Addr is the host:port to dial for the Gateway's listener on port. A port that was not a
// listener when the Gateway was resolved has no address under nodeport or port-forward: Addr
// then returns 127.0.0.1:0, which refuses every dial, and UnknownPort says why.
func (g *Gateway) Addr(port int) string {
	if g.addrs == nil {
		return HostPort(g.Address, port)
	}
	if a, ok := g.addrs[port]; ok {
		return a
	}
	return "127.0.0.1:0"
}

// UnknownPort explains why Addr(port) cannot be dialled, or returns nil.
func (g *Gateway) UnknownPort(port int) error {
	if g.addrs == nil {
		return nil
	}
	if _, ok := g.addrs[port]; ok {
		return nil
	}
	known := slices.Sorted(maps.Keys(g.addrs))
	return fmt.Errorf("Gateway %s/%s has no spec.listeners port %d reachable under reach mode %s (listener ports: %v)", g.Namespace, g.Name, port, g.Mode, known)
}

// String names the Gateway and how it is reached, for progress lines.
func (g *Gateway) String() string {
	if g.addrs == nil {
		return fmt.Sprintf("Gateway %s/%s at %s", g.Namespace, g.Name, g.Address)
	}
	ports := slices.Sorted(maps.Keys(g.addrs))
	var parts []string
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%d->%s", p, g.addrs[p]))
	}
	return fmt.Sprintf("Gateway %s/%s via %s (%s)", g.Namespace, g.Name, g.Mode, strings.Join(parts, ", "))
}

// gatewayService finds Gateway gwNS/gateway's data-plane Service as the profile's
// reach.service says (by default the GEP-1762 label gateway.networking.k8s.io/gateway-name in
// the Gateway's namespace). Several may match (an implementation may add an admin or metrics
// Service): the ones serving every listener port win, then (for nodeport) those with node
// ports, then the first by name.
func gatewayService(ctx context.Context, kube kubernetes.Interface, lookup impls.ReachService, gwNS, gateway string, ports []int, wantNodePorts bool) (*corev1.Service, error) {
	ns, selector, err := lookup.Resolve(gwNS, gateway)
	if err != nil {
		return nil, err
	}
	sel := selector.String()
	list, err := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list Services %s in namespace %s for Gateway %s/%s: %w", sel, ns, gwNS, gateway, err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("no Service in namespace %s matches %s: the data-plane Service of Gateway %s/%s must, to be reached by nodeport or port-forward (set the profile's reach.service.namespace and .selector if the implementation labels it otherwise; the default is GEP-1762's %s)",
			ns, sel, gwNS, gateway, impls.DefaultServiceSelector)
	}
	type cand struct {
		svc     *corev1.Service
		missing []int
		noNode  bool
	}
	var cands []cand
	for i := range list.Items {
		s := &list.Items[i]
		c := cand{svc: s}
		for _, p := range ports {
			sp := findServicePort(s, p)
			switch {
			case sp == nil:
				c.missing = append(c.missing, p)
			case sp.NodePort == 0:
				c.noNode = true
			}
		}
		cands = append(cands, c)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if (len(a.missing) == 0) != (len(b.missing) == 0) {
			return len(a.missing) == 0
		}
		if wantNodePorts && a.noNode != b.noNode {
			return !a.noNode
		}
		return a.svc.Name < b.svc.Name
	})
	if best := cands[0]; len(best.missing) > 0 {
		var have []string
		for _, c := range cands {
			have = append(have, fmt.Sprintf("%s %v", c.svc.Name, servicePorts(c.svc)))
		}
		return nil, fmt.Errorf("no Service matching %s in namespace %s has spec.ports for every listener port %v of Gateway %s/%s (Services and ports: %s)",
			sel, ns, ports, gwNS, gateway, strings.Join(have, "; "))
	}
	return cands[0].svc, nil
}

func findServicePort(s *corev1.Service, port int) *corev1.ServicePort {
	for i := range s.Spec.Ports {
		p := &s.Spec.Ports[i]
		if int(p.Port) == port && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
			return p
		}
	}
	return nil
}

func servicePorts(s *corev1.Service) []int32 {
	var out []int32
	for _, p := range s.Spec.Ports {
		out = append(out, p.Port)
	}
	return out
}

// nodePortAddrs maps each listener port to <node InternalIP>:<nodePort> of svc.
func nodePortAddrs(svc *corev1.Service, nodeIP string, ports []int) (map[int]string, error) {
	out := map[int]string{}
	for _, p := range ports {
		sp := findServicePort(svc, p)
		if sp == nil {
			return nil, fmt.Errorf("Service %s/%s spec.ports: no port %d (ports: %v)", svc.Namespace, svc.Name, p, servicePorts(svc))
		}
		if sp.NodePort == 0 {
			return nil, fmt.Errorf("Service %s/%s spec.ports[port=%d].nodePort is unset (spec.type %s): reach mode nodeport needs a NodePort or LoadBalancer Service",
				svc.Namespace, svc.Name, p, svcType(svc))
		}
		out[p] = net.JoinHostPort(nodeIP, strconv.Itoa(int(sp.NodePort)))
	}
	return out, nil
}

func svcType(s *corev1.Service) corev1.ServiceType {
	if s.Spec.Type == "" {
		return corev1.ServiceTypeClusterIP
	}
	return s.Spec.Type
}

// nodeAddress is the InternalIP of the first Ready node by name: every node serves every
// node port, so any reachable one does.
func nodeAddress(ctx context.Context, kube kubernetes.Interface) (string, error) {
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	items := nodes.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	var why []string
	for _, n := range items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
			}
		}
		if !ready {
			why = append(why, n.Name+": not Ready")
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && a.Address != "" {
				return a.Address, nil
			}
		}
		why = append(why, n.Name+": no status.addresses entry of type InternalIP")
	}
	if len(items) == 0 {
		return "", errors.New("no nodes: reach mode nodeport dials a node's InternalIP")
	}
	return "", fmt.Errorf("no Ready node with an InternalIP in status.addresses (%s)", strings.Join(why, "; "))
}

// podTarget is one Pod and container port a port-forward goes to.
type podTarget struct {
	Namespace, Pod string
	UID            types.UID
	Port           int32
}

func (t podTarget) String() string {
	return fmt.Sprintf("Pod %s/%s port %d", t.Namespace, t.Pod, t.Port)
}

// servicePodTarget picks the ready, non-terminating Pod (first by name) behind the Service
// port with the given port number and resolves its target port, from the Service's
// EndpointSlices or, when it has none yet, from Pods matching its selector.
func servicePodTarget(ctx context.Context, kube kubernetes.Interface, svc *corev1.Service, port int) (podTarget, error) {
	sp := findServicePort(svc, port)
	if sp == nil {
		return podTarget{}, fmt.Errorf("Service %s/%s spec.ports: no port %d (ports: %v)", svc.Namespace, svc.Name, port, servicePorts(svc))
	}
	eps, err := kube.DiscoveryV1().EndpointSlices(svc.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}).String(),
	})
	if err != nil {
		return podTarget{}, fmt.Errorf("list EndpointSlices of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	if len(eps.Items) > 0 {
		return sliceTarget(svc, sp, eps.Items)
	}
	return selectorTarget(ctx, kube, svc, sp)
}

func sliceTarget(svc *corev1.Service, sp *corev1.ServicePort, items []discoveryv1.EndpointSlice) (podTarget, error) {
	var cands []podTarget
	seen := 0
	for _, s := range items {
		var target int32
		for _, p := range s.Ports {
			if p.Port != nil && ptrString(p.Name) == sp.Name && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
				target = *p.Port
			}
		}
		if target == 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			seen++
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || !ptrTrue(ep.Conditions.Ready, true) || ptrTrue(ep.Conditions.Terminating, false) {
				continue
			}
			cands = append(cands, podTarget{Namespace: svc.Namespace, Pod: ep.TargetRef.Name, UID: ep.TargetRef.UID, Port: target})
		}
	}
	if len(cands) == 0 {
		return podTarget{}, fmt.Errorf("Service %s/%s port %d (name %q): no ready, non-terminating Pod endpoint in its EndpointSlices (%d endpoints seen)",
			svc.Namespace, svc.Name, sp.Port, sp.Name, seen)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Pod < cands[j].Pod })
	return cands[0], nil
}

func selectorTarget(ctx context.Context, kube kubernetes.Interface, svc *corev1.Service, sp *corev1.ServicePort) (podTarget, error) {
	if len(svc.Spec.Selector) == 0 {
		return podTarget{}, fmt.Errorf("Service %s/%s has no EndpointSlices and no spec.selector: cannot find a Pod behind port %d", svc.Namespace, svc.Name, sp.Port)
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector).String()
	pods, err := kube.CoreV1().Pods(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return podTarget{}, fmt.Errorf("list Pods %s of Service %s/%s: %w", sel, svc.Namespace, svc.Name, err)
	}
	items := pods.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	for i := range items {
		p := &items[i]
		if p.DeletionTimestamp != nil || !podReady(p) {
			continue
		}
		port, err := containerPort(p, sp.TargetPort, sp.Port)
		if err != nil {
			return podTarget{}, fmt.Errorf("Service %s/%s port %d: %w", svc.Namespace, svc.Name, sp.Port, err)
		}
		return podTarget{Namespace: p.Namespace, Pod: p.Name, UID: p.UID, Port: port}, nil
	}
	return podTarget{}, fmt.Errorf("Service %s/%s has no EndpointSlices and no ready, non-terminating Pod matches its spec.selector %s (%d Pods)", svc.Namespace, svc.Name, sel, len(items))
}

// containerPort resolves a Service targetPort (a number, a container port name, or unset
// meaning the Service port) on a Pod.
func containerPort(p *corev1.Pod, target intstr.IntOrString, port int32) (int32, error) {
	switch {
	case target.Type == intstr.Int && target.IntVal != 0:
		return target.IntVal, nil
	case target.Type == intstr.String && target.StrVal != "":
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == target.StrVal {
					return cp.ContainerPort, nil
				}
			}
		}
		return 0, fmt.Errorf("targetPort %q: Pod %s/%s has no container port of that name", target.StrVal, p.Namespace, p.Name)
	}
	return port, nil
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ptrTrue reads an optional condition, def when unset (EndpointSlice semantics: a nil ready
// means ready).
func ptrTrue(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// podServing says why a Pod a port-forward goes to no longer serves (deleted, replaced,
// terminating, not ready), or "".
func podServing(ctx context.Context, kube kubernetes.Interface, t podTarget) (string, error) {
	p, err := kube.CoreV1().Pods(t.Namespace).Get(ctx, t.Pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "Pod " + t.Namespace + "/" + t.Pod + " was deleted", nil
	case err != nil:
		return "", fmt.Errorf("get Pod %s/%s: %w", t.Namespace, t.Pod, err)
	case t.UID != "" && p.UID != t.UID:
		return fmt.Sprintf("Pod %s/%s was replaced (uid %s; forwarded to %s)", t.Namespace, t.Pod, p.UID, t.UID), nil
	case p.DeletionTimestamp != nil:
		return "Pod " + t.Namespace + "/" + t.Pod + " is terminating", nil
	case !podReady(p):
		return "Pod " + t.Namespace + "/" + t.Pod + " is not Ready", nil
	}
	return "", nil
}
