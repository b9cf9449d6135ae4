package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

const (
	// LabelManagedBy marks the proxy Deployments, Pods and Services this controller owns.
	LabelManagedBy = translate.LabelManagedBy
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "gatecheck-reference"
	// LabelProxyFor holds a hash of the Gateway's namespace/name (names can exceed the 63
	// characters a label value allows).
	LabelProxyFor = "gatecheck.dev/proxy-for"
	// annotationSpecHash lets reconcile skip writes when the desired object did not change.
	annotationSpecHash = "gatecheck.dev/spec-hash"
	// AdminPort is the proxy's admin port (/ready, /metrics).
	AdminPort = 19000
)

// proxyName is the Deployment and Service name for a Gateway's proxies: within 63 characters
// so it is also a valid Service name.
func proxyName(gw *gwv1.Gateway) string {
	n := "gatecheck-" + gw.Name
	if len(n) <= 63 {
		return n
	}
	return n[:52] + "-" + gatewayHash(gw)[:10]
}

func gatewayHash(gw *gwv1.Gateway) string {
	h := sha256.Sum256([]byte(gw.Namespace + "/" + gw.Name))
	return hex.EncodeToString(h[:])[:40]
}

func hashOf(v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// provisioner creates and updates each Gateway's proxy Deployment and Service, and the
// Secret with the proxies' delivery certificate.
type provisioner struct {
	c client.Client
	// api reads Secrets directly (the cache holds none).
	api         client.Reader
	image       string
	serviceType corev1.ServiceType
	replicas    int32
	ca          *CA
	// serverName is the name in the delivery server's certificate, which proxies verify.
	serverName string

	mu sync.Mutex
	// certs remembers, per Gateway UID, when its certificate Secret was last found current
	// and with which labels and annotations, so that it is read again only every certRecheck
	// or when spec.infrastructure changed.
	certs map[types.UID]certCheck
	// requests remembers, per Gateway UID, since when its proxy Service asks the load balancer
	// for the addresses it asks for now (addressesRequestedSince).
	requests map[types.UID]addressRequest
	// lb is what the proxy Services showed of the cluster's load balancer.
	lb lbMemory
}

// lbMemory is what the controller learned of the cluster's load balancer from its proxy
// Services: whether one ever got an address (answered) and whether one waited the whole
// --lb-address-wait without (missed). A miss before any answer means the cluster has no load
// balancer implementation: later Gateways advertise their ClusterIP at once instead of each
// waiting the full time (20 s per new Gateway on such a cluster; ~35 of the upstream suite's
// tests create Gateways). Once any Service is answered, every Service waits again, and a
// Gateway that advertised its ClusterIP gets the load balancer's address when it comes (the
// Service's change is watched). Gateways asking for spec.addresses always wait: only a load
// balancer can give those. In memory only: after a restart the controller learns again.
type lbMemory struct{ answered, missed atomic.Bool }

// wait is how long a LoadBalancer Service without an address is given before its Gateway
// advertises the ClusterIP.
func (m *lbMemory) wait(lbWait time.Duration) time.Duration {
	if m.missed.Load() && !m.answered.Load() {
		return 0
	}
	return lbWait
}

// observe learns from one proxy Service at now.
func (m *lbMemory) observe(svc *corev1.Service, now time.Time, lbWait time.Duration) {
	if svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" || in.Hostname != "" {
			m.answered.Store(true)
			return
		}
	}
	if now.Sub(svc.CreationTimestamp.Time) >= lbWait {
		m.missed.Store(true)
	}
}

type certCheck struct {
	at   time.Time
	meta string
}

type addressRequest struct {
	ips   string
	since time.Time
}

// certRecheck is how often a Gateway's certificate Secret is read again to find it deleted,
// changed or due for renewal.
const certRecheck = 10 * time.Minute

// deliveryMount is where a proxy finds its delivery certificate.
const deliveryMount = "/etc/gatecheck/delivery"

func certSecretName(gw *gwv1.Gateway) string { return proxyName(gw) + "-delivery" }

// selector picks a Gateway's proxy Pods. It never changes: a Deployment's selector is
// immutable, so the labels below are added beside it rather than into it.
func (p *provisioner) selector(gw *gwv1.Gateway) map[string]string {
	return map[string]string{LabelManagedBy: ManagedByValue, LabelProxyFor: gatewayHash(gw)}
}

// labels are the Gateway's spec.infrastructure.labels, the selector, and the GEP-1762 labels
// naming the Gateway and its class, by which tools (gatecheck's nodeport and port-forward
// reach modes among them) find a Gateway's data plane. A name too long for a label value
// (over 63 characters) is left out rather than truncated into a label naming another
// Gateway. The controller's own labels are set last: translate refuses a Gateway whose
// spec.infrastructure would give them other values, so nothing here overrides a user's label.
func (p *provisioner) labels(gw *gwv1.Gateway) map[string]string {
	lbl := map[string]string{}
	if inf := gw.Spec.Infrastructure; inf != nil {
		for k, v := range inf.Labels {
			lbl[string(k)] = string(v)
		}
	}
	maps.Copy(lbl, p.selector(gw))
	if len(validation.IsValidLabelValue(gw.Name)) == 0 {
		lbl[gwv1.GatewayNameLabelKey] = gw.Name
	}
	if c := string(gw.Spec.GatewayClassName); c != "" && len(validation.IsValidLabelValue(c)) == 0 {
		lbl[gwv1.GatewayClassNameLabelKey] = c
	}
	return lbl
}

// annotations are the Gateway's spec.infrastructure.annotations, which go on every object
// provisioned for it (a fresh map: callers add their own).
func annotations(gw *gwv1.Gateway) map[string]string {
	out := map[string]string{}
	if inf := gw.Spec.Infrastructure; inf != nil {
		for k, v := range inf.Annotations {
			out[string(k)] = string(v)
		}
	}
	return out
}

// withHash returns ann plus the spec-hash annotation of v.
func withHash(ann map[string]string, v any) map[string]string {
	out := maps.Clone(ann)
	out[annotationSpecHash] = hashOf(v)
	return out
}

func ownerRef(gw *gwv1.Gateway) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: gwv1.GroupVersion.String(), Kind: "Gateway", Name: gw.Name, UID: gw.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

func (p *provisioner) deployment(gw *gwv1.Gateway, deliveryURL string) *appsv1.Deployment {
	lbl, ann := p.labels(gw), annotations(gw)
	// Readable by the proxy's group only (fsGroup below).
	secretMode := int32(0o440)
	spec := appsv1.DeploymentSpec{
		Replicas: ptr.To(p.replicas),
		Selector: &metav1.LabelSelector{MatchLabels: p.selector(gw)},
		Template: corev1.PodTemplateSpec{
			// spec.infrastructure labels and annotations reach the Pods too: changing them
			// rolls the proxies out again (README).
			ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: ann},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](5),
				AutomountServiceAccountToken:  ptr.To(false),
				EnableServiceLinks:            ptr.To(false),
				// Non-root (the distroless nonroot ids), as the Pod Security "restricted"
				// profile requires. Listeners use ports below 1024 (80, 443): instead of
				// NET_BIND_SERVICE, which a non-root container does not get as an effective
				// capability, the Pod's own network namespace lets any user bind them
				// (a namespaced sysctl Kubernetes allows by default since 1.22).
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot:   ptr.To(true),
					RunAsUser:      ptr.To[int64](65532),
					RunAsGroup:     ptr.To[int64](65532),
					FSGroup:        ptr.To[int64](65532),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					Sysctls:        []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}},
				},
				Volumes: []corev1.Volume{{
					Name: "delivery-tls",
					VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
						SecretName: certSecretName(gw), DefaultMode: &secretMode,
					}},
				}},
				Containers: []corev1.Container{{
					Name:            "proxy",
					Image:           p.image,
					ImagePullPolicy: corev1.PullIfNotPresent,
					Args: []string{
						"--controller", deliveryURL,
						"--controller-server-name", p.serverName,
						"--tls-dir", deliveryMount,
						"--gateway", gw.Namespace + "/" + gw.Name,
						"--pod-name", "$(POD_NAME)",
						"--admin-addr", ":" + strconv.Itoa(AdminPort),
					},
					Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false),
						ReadOnlyRootFilesystem:   ptr.To(true),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
					VolumeMounts: []corev1.VolumeMount{{Name: "delivery-tls", MountPath: deliveryMount, ReadOnly: true}},
					Ports:        []corev1.ContainerPort{{Name: "admin", ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(AdminPort)}},
						PeriodSeconds:    1,
						FailureThreshold: 2,
						TimeoutSeconds:   1,
					},
					// A data plane without requests is BestEffort: its cgroup gets the smallest CPU
					// weight, and on a busy node it waits behind everything else (seen: route
					// propagation tails of 10-20 ms between the controller's publish and the proxy's
					// apply on the 2-core host cluster).
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("100m"),
						corev1.ResourceMemory: resource.MustParse("32Mi"),
					}},
				}},
			},
		},
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: proxyName(gw), Namespace: gw.Namespace, Labels: lbl,
			Annotations:     withHash(ann, []any{lbl, ann, spec}),
			OwnerReferences: []metav1.OwnerReference{ownerRef(gw)},
		},
		Spec: spec,
	}
}

func (p *provisioner) service(gw *gwv1.Gateway, ports []int32, udpPorts ...int32) *corev1.Service {
	lbl, ann := p.labels(gw), annotations(gw)
	if ips := translate.RequestedAddresses(gw); len(ips) > 0 {
		// spec.addresses: asked of the load balancer; gatewayAddresses judges its answer.
		s := make([]string, len(ips))
		for i, ip := range ips {
			s[i] = ip.String()
		}
		ann[translate.LoadBalancerIPsAnnotation] = strings.Join(s, ",")
	}
	spec := corev1.ServiceSpec{Type: p.serviceType, Selector: p.selector(gw)}
	for _, port := range ports {
		spec.Ports = append(spec.Ports, corev1.ServicePort{
			Name: "port-" + strconv.Itoa(int(port)), Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP,
		})
	}
	for _, port := range udpPorts { // UDP listeners (issue 19)
		spec.Ports = append(spec.Ports, corev1.ServicePort{
			Name: "udp-" + strconv.Itoa(int(port)), Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolUDP,
		})
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: proxyName(gw), Namespace: gw.Namespace, Labels: lbl,
			// The labels are hashed too: they are how others find the Service.
			Annotations:     withHash(ann, []any{lbl, ann, spec}),
			OwnerReferences: []metav1.OwnerReference{ownerRef(gw)},
		},
		Spec: spec,
	}
}

// NameConflict is the Programmed reason of a Gateway whose proxy objects cannot be created
// because objects of the same names exist that the Gateway does not own.
const NameConflict = "ProxyNameConflict"

// nameClashError says an object the provisioner would write exists and is not the Gateway's.
type nameClashError struct {
	kind, namespace, name string
}

func (e *nameClashError) Error() string {
	return fmt.Sprintf("%s %s/%s already exists and is not owned by this Gateway; the controller does not change or delete it: rename or delete it to let the proxies be provisioned", e.kind, e.namespace, e.name)
}

// ownedBy says whether gw controls o: o's controller owner reference names gw. A reference to
// an earlier Gateway of the same name (deleted and created again, its objects not yet
// garbage-collected) counts too: no other Gateway of that name can exist in the namespace.
func ownedBy(o metav1.Object, gw *gwv1.Gateway) bool {
	for _, r := range o.GetOwnerReferences() {
		gv, err := schema.ParseGroupVersion(r.APIVersion)
		if err == nil && gv.Group == gwv1.GroupName && r.Kind == "Gateway" && r.Name == gw.Name && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

func kindOf(o client.Object) string {
	switch o.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *corev1.Service:
		return "Service"
	case *corev1.Secret:
		return "Secret"
	}
	return fmt.Sprintf("%T", o)
}

// ensure creates want or, when the Gateway owns the existing object and its spec hash
// differs, updates it (keeping fields the API server allocated, such as a Service's
// clusterIP). An existing object the Gateway does not own is a *nameClashError.
func (p *provisioner) ensure(ctx context.Context, gw *gwv1.Gateway, want client.Object, existing client.Object) error {
	key := client.ObjectKeyFromObject(want)
	kind := kindOf(want)
	err := p.c.Get(ctx, key, existing)
	if apierrors.IsNotFound(err) {
		err = p.c.Create(ctx, want)
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s: %w", kind, key, err)
		}
		// Not in the cache (which holds only our labelled Deployments), or created meanwhile.
		if err = p.api.Get(ctx, key, existing); err != nil {
			return fmt.Errorf("get %s %s: %w", kind, key, err)
		}
	} else if err != nil {
		return fmt.Errorf("get %s %s: %w", kind, key, err)
	}
	if !ownedBy(existing, gw) {
		return &nameClashError{kind: kind, namespace: key.Namespace, name: key.Name}
	}
	if existing.GetAnnotations()[annotationSpecHash] == want.GetAnnotations()[annotationSpecHash] {
		return nil
	}
	switch e := existing.(type) {
	case *appsv1.Deployment:
		w := want.(*appsv1.Deployment)
		e.Labels, e.Annotations, e.OwnerReferences, e.Spec = w.Labels, w.Annotations, w.OwnerReferences, w.Spec
	case *corev1.Service:
		w := want.(*corev1.Service)
		e.Labels, e.Annotations, e.OwnerReferences = w.Labels, w.Annotations, w.OwnerReferences
		e.Spec.Type, e.Spec.Selector, e.Spec.Ports = w.Spec.Type, w.Spec.Selector, w.Spec.Ports
	}
	if err := p.c.Update(ctx, existing); err != nil {
		return fmt.Errorf("update %s %s: %w", kind, key, err)
	}
	return nil
}

// ensureCert makes sure the Gateway's certificate Secret holds a current certificate naming
// the Gateway, signed by the controller's CA.
func (p *provisioner) ensureCert(ctx context.Context, gw *gwv1.Gateway) error {
	lbl, ann := p.labels(gw), annotations(gw)
	meta := hashOf([]any{lbl, ann})
	p.mu.Lock()
	checked, ok := p.certs[gw.UID]
	p.mu.Unlock()
	now := time.Now()
	if ok && now.Sub(checked.at) < certRecheck && checked.meta == meta {
		return nil
	}
	key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	name := certSecretName(gw)
	var s corev1.Secret
	err := p.api.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: name}, &s)
	exists := err == nil
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get Secret %s/%s: %w", gw.Namespace, name, err)
	case !ownedBy(&s, gw):
		return &nameClashError{kind: "Secret", namespace: gw.Namespace, name: name}
	case p.ca.proxyCertCurrent(key, s.Data, now):
		if !maps.Equal(s.Labels, lbl) || !maps.Equal(s.Annotations, ann) {
			s.Labels, s.Annotations = lbl, ann
			if err := p.c.Update(ctx, &s); err != nil {
				return fmt.Errorf("update Secret %s/%s: %w", gw.Namespace, name, err)
			}
		}
		p.remember(gw.UID, now, meta)
		return nil
	}
	certPEM, keyPEM, err := p.ca.IssueProxy(key)
	if err != nil {
		return fmt.Errorf("issue delivery certificate of gateway %s: %w", key, err)
	}
	want := corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: gw.Namespace, Labels: lbl, Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{ownerRef(gw)},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{caCertKey: p.ca.CertPEM(), corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}
	if !exists {
		if err := p.c.Create(ctx, &want); err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", gw.Namespace, name, err)
		}
	} else {
		s.Labels, s.Annotations, s.OwnerReferences, s.Data = want.Labels, want.Annotations, want.OwnerReferences, want.Data
		if s.Type != corev1.SecretTypeTLS {
			return fmt.Errorf("secret %s/%s has type %s, not %s: delete it so the controller recreates it", gw.Namespace, name, s.Type, corev1.SecretTypeTLS)
		}
		if err := p.c.Update(ctx, &s); err != nil {
			return fmt.Errorf("update Secret %s/%s: %w", gw.Namespace, name, err)
		}
	}
	p.remember(gw.UID, now, meta)
	return nil
}

func (p *provisioner) remember(uid types.UID, at time.Time, meta string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.certs == nil {
		p.certs = map[types.UID]certCheck{}
	}
	// Entries past certRecheck are read again anyway: drop them (deleted Gateways' too).
	for k, c := range p.certs {
		if at.Sub(c.at) >= certRecheck {
			delete(p.certs, k)
		}
	}
	p.certs[uid] = certCheck{at: at, meta: meta}
}

// Ensure makes the Gateway's proxy certificate, Deployment and Service match ports.
func (p *provisioner) Ensure(ctx context.Context, gw *gwv1.Gateway, ports []int32, deliveryURL string, udpPorts ...int32) error {
	if err := p.ensureCert(ctx, gw); err != nil {
		return err
	}
	if err := p.ensure(ctx, gw, p.service(gw, ports, udpPorts...), &corev1.Service{}); err != nil {
		return err
	}
	return p.ensure(ctx, gw, p.deployment(gw, deliveryURL), &appsv1.Deployment{})
}

// Remove deletes the Gateway's proxies and their certificate (the Gateway has nothing left to
// serve): only objects the Gateway owns, and only the very objects found owned (a UID
// precondition).
func (p *provisioner) Remove(ctx context.Context, gw *gwv1.Gateway) error {
	p.mu.Lock()
	delete(p.certs, gw.UID)
	delete(p.requests, gw.UID)
	p.mu.Unlock()
	objs := []struct {
		key types.NamespacedName
		obj client.Object
		r   client.Reader
	}{
		{types.NamespacedName{Namespace: gw.Namespace, Name: proxyName(gw)}, &appsv1.Deployment{}, p.c},
		{types.NamespacedName{Namespace: gw.Namespace, Name: proxyName(gw)}, &corev1.Service{}, p.c},
		{types.NamespacedName{Namespace: gw.Namespace, Name: certSecretName(gw)}, &corev1.Secret{}, p.api},
	}
	for _, o := range objs {
		kind := kindOf(o.obj)
		switch err := o.r.Get(ctx, o.key, o.obj); {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("get %s %s: %w", kind, o.key, err)
		}
		if !ownedBy(o.obj, gw) {
			continue
		}
		uid := o.obj.GetUID()
		if err := p.c.Delete(ctx, o.obj, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete %s %s: %w", kind, o.key, err)
		}
	}
	return nil
}

// addresses is what the Gateway's status should advertise for its proxy Service, and, when
// that is nothing yet but may become something, how long until asking again.
//
// A LoadBalancer Service advertises its load balancer's ingress addresses. Where no load
// balancer implementation assigns one (an existing cluster without MetalLB or a cloud
// provider), the Gateway must still get an address: once the Service has waited lbWait
// without one, its ClusterIP is advertised instead, which the runner on a cluster node or the
// host cluster's machine reaches through kube-proxy. A later ingress address replaces it (the
// Service's status change triggers a reconcile).
func addresses(svc *corev1.Service, now time.Time, lbWait time.Duration) ([]gwv1.GatewayStatusAddress, time.Duration) {
	if svc == nil {
		return nil, 0
	}
	ip, host := gwv1.IPAddressType, gwv1.HostnameAddressType
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		var out []gwv1.GatewayStatusAddress
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				out = append(out, gwv1.GatewayStatusAddress{Type: &ip, Value: in.IP})
			} else if in.Hostname != "" {
				out = append(out, gwv1.GatewayStatusAddress{Type: &host, Value: in.Hostname})
			}
		}
		if len(out) > 0 {
			return out, 0
		}
		if waited := now.Sub(svc.CreationTimestamp.Time); waited < lbWait {
			return nil, lbWait - waited
		}
	}
	// ClusterIP, and NodePort too: the runner on the host reaches ClusterIPs through kube-proxy.
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, 0
	}
	return []gwv1.GatewayStatusAddress{{Type: &ip, Value: svc.Spec.ClusterIP}}, 0
}

// addressesRequestedSince is when the Gateway's proxy Service began asking the load balancer
// for ips (as the provisioner writes them): the load balancer's time to answer is counted from
// there, not from the Service's creation. Remembered in memory only: after a restart the
// controller waits for the load balancer once more.
func (p *provisioner) addressesRequestedSince(uid types.UID, ips []netip.Addr, now time.Time) time.Time {
	key := fmt.Sprint(ips)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(ips) == 0 {
		delete(p.requests, uid)
		return now
	}
	if r, ok := p.requests[uid]; ok && r.ips == key {
		return r.since
	}
	if p.requests == nil {
		p.requests = map[types.UID]addressRequest{}
	}
	p.requests[uid] = addressRequest{ips: key, since: now}
	return now
}

// addressState is what a Gateway advertises for its proxy Service and, when that is nothing,
// why, and how long until asking again.
type addressState struct {
	addrs  []gwv1.GatewayStatusAddress
	retry  time.Duration
	reason gwv1.GatewayConditionReason
	msg    string
}

// gatewayAddresses is addresses for a Gateway whose spec.addresses names want (values only;
// entries without a value ask for any address, which is what addresses gives). The load
// balancer is asked for want through the Service's annotation (service); what it assigns is
// advertised only when it holds every address asked for. An address it cannot give is
// AddressNotUsable: at once when the request cannot work at all (a Service that is not a
// LoadBalancer, two addresses of one IP family, an assignment of other addresses), else once
// lbWait has passed since the request without an assignment (MetalLB leaves an address outside
// its pools, or in use, unassigned and says why in the Service's events).
func gatewayAddresses(svc *corev1.Service, want []netip.Addr, since, now time.Time, lbWait time.Duration) addressState {
	if len(want) == 0 || svc == nil {
		addrs, retry := addresses(svc, now, lbWait)
		return addressState{addrs: addrs, retry: retry}
	}
	notUsable := func(format string, args ...any) addressState {
		return addressState{reason: gwv1.GatewayReasonAddressNotUsable, msg: fmt.Sprintf(format, args...)}
	}
	where := fmt.Sprintf("Service %s/%s", svc.Namespace, svc.Name)
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return notUsable("spec.addresses: the proxy %s is of type %s; only a LoadBalancer Service can be given an address (controller flag --service-type)", where, svc.Spec.Type)
	}
	families := map[bool]netip.Addr{}
	for _, ip := range want {
		if other, ok := families[ip.Is4()]; ok {
			return notUsable("spec.addresses: %s and %s are of the same IP family; the proxy %s gets one load balancer address per family: keep one of them", other, ip, where)
		}
		families[ip.Is4()] = ip
	}
	var got []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(in.IP); err == nil {
			got = append(got, ip.Unmap())
		}
	}
	var missing []string
	for _, ip := range want {
		if !slices.Contains(got, ip) {
			missing = append(missing, ip.String())
		}
	}
	if len(missing) == 0 {
		typ := gwv1.IPAddressType
		out := make([]gwv1.GatewayStatusAddress, len(got))
		for i, ip := range got {
			out[i] = gwv1.GatewayStatusAddress{Type: &typ, Value: ip.String()}
		}
		return addressState{addrs: out}
	}
	// The load balancer answers a changed request after a while (MetalLB first drops what it
	// assigned before): until lbWait has passed the addresses are pending, not unusable.
	if waited := now.Sub(since); waited < lbWait {
		return addressState{retry: lbWait - waited, reason: gwv1.GatewayReasonAddressNotAssigned,
			msg: fmt.Sprintf("waiting for the load balancer to assign %s to the proxy %s", strings.Join(missing, ", "), where)}
	}
	if len(got) > 0 {
		return notUsable("spec.addresses: the load balancer gave the proxy %s %v, not %s; does it honour the annotation %s?", where, got, strings.Join(missing, ", "), translate.LoadBalancerIPsAnnotation)
	}
	return notUsable("spec.addresses: the load balancer has not assigned %s to the proxy %s in %s: the address is outside its pools or in use (kubectl describe service -n %s %s shows why); use another", strings.Join(missing, ", "), where, lbWait, svc.Namespace, svc.Name)
}
