package translate

// BackendTLSPolicy (GEP-1897) and the Gateway's backend client certificate (GEP-3155):
// which policy applies to a route's backend Service port, what the proxy needs for it
// (ir.BackendTLS), and the policies' status, one ancestor entry per Gateway of ours whose
// routes use a Service the policy targets.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// policyCAKey is the ConfigMap key holding a CA bundle, as the API specifies.
const policyCAKey = "ca.crt"

// tlsTarget is what a policy's targetRef selects: a Service, and one of its ports by name
// (sectionName) or, with section "", all of them.
type tlsTarget struct {
	svc     types.NamespacedName
	section string
}

// tlsPolicy is one BackendTLSPolicy as translation judged it.
type tlsPolicy struct {
	p *gwv1.BackendTLSPolicy
	// tls is what backends it applies to get; nil when no CA certificate is usable (those
	// backends then get no endpoints: their requests fail with a 500, as the API requires).
	tls *ir.BackendTLS
	// accepted, resolved: the Accepted and ResolvedRefs conditions (reason, message).
	accepted, resolved   bool
	accReason, resReason string
	accMsg, resMsg       string
	// conflicted: another policy takes precedence for one of its targets.
	conflicted bool
	// invalidBackend is ir.Backend.Invalid for the backends of a policy without tls.
	invalidBackend string
}

// backendTLSIndex is built by NewEnv: the policy that takes precedence for each target, and
// every policy by target (the losers get status too).
type backendTLSIndex struct {
	winner map[tlsTarget]*tlsPolicy
	all    map[tlsTarget][]*tlsPolicy
	list   []*tlsPolicy
}

func (t *translator) buildBackendTLS() *backendTLSIndex {
	idx := &backendTLSIndex{winner: map[tlsTarget]*tlsPolicy{}, all: map[tlsTarget][]*tlsPolicy{}}
	if len(t.in.BackendTLSPolicies) == 0 {
		return idx
	}
	cms := make(map[types.NamespacedName]*corev1.ConfigMap, len(t.in.ConfigMaps))
	for _, cm := range t.in.ConfigMaps {
		cms[nn(cm.Namespace, cm.Name)] = cm
	}
	ps := slices.Clone(t.in.BackendTLSPolicies)
	slices.SortFunc(ps, ByAge[*gwv1.BackendTLSPolicy]) // precedence: oldest, then namespace/name
	for _, p := range ps {
		if p.DeletionTimestamp != nil {
			continue
		}
		tp := judgeBackendTLSPolicy(p, cms)
		idx.list = append(idx.list, tp)
		for _, ref := range p.Spec.TargetRefs {
			if coreGroup(string(ref.Group)) != "" || string(ref.Kind) != kindService {
				continue // not a target this implementation knows
			}
			k := tlsTarget{svc: nn(p.Namespace, string(ref.Name)), section: ptrStr(ref.SectionName)}
			idx.all[k] = append(idx.all[k], tp)
			if _, taken := idx.winner[k]; taken {
				tp.conflicted = true
				continue
			}
			idx.winner[k] = tp
		}
	}
	return idx
}

// judgeBackendTLSPolicy resolves a policy's CA certificates and names.
func judgeBackendTLSPolicy(p *gwv1.BackendTLSPolicy, cms map[types.NamespacedName]*corev1.ConfigMap) *tlsPolicy {
	name := p.Namespace + "/" + p.Name
	tp := &tlsPolicy{p: p, accepted: true, accReason: string(gwv1.PolicyReasonAccepted), accMsg: "accepted",
		resolved: true, resReason: string(gwv1.BackendTLSPolicyReasonResolvedRefs), resMsg: "all references resolved"}
	v := p.Spec.Validation
	out := &ir.BackendTLS{Policy: name, ServerName: string(v.Hostname)}
	for i, san := range v.SubjectAltNames {
		switch san.Type {
		case gwv1.HostnameSubjectAltNameType:
			out.SubjectAltNames = append(out.SubjectAltNames, ir.SubjectAltName{Hostname: string(san.Hostname)})
		case gwv1.URISubjectAltNameType:
			out.SubjectAltNames = append(out.SubjectAltNames, ir.SubjectAltName{URI: string(san.URI)})
		default:
			tp.accepted, tp.accReason, tp.accMsg = false, string(gwv1.PolicyReasonInvalid), fmt.Sprintf("spec.validation.subjectAltNames[%d].type: unsupported %q (want Hostname or URI)", i, san.Type)
			return tp
		}
	}
	if wk := v.WellKnownCACertificates; wk != nil && *wk != "" {
		if *wk != gwv1.WellKnownCACertificatesSystem || len(v.CACertificateRefs) > 0 {
			tp.accepted, tp.accReason, tp.accMsg = false, string(gwv1.PolicyReasonInvalid), fmt.Sprintf("spec.validation.wellKnownCACertificates: unsupported %q (want System, without caCertificateRefs)", *wk)
			return tp
		}
		out.SystemCAs = true
		tp.tls = out
		return tp
	}
	var bundle []byte
	for i, ref := range v.CACertificateRefs {
		where := fmt.Sprintf("spec.validation.caCertificateRefs[%d]", i)
		reason, msg := "", ""
		if coreGroup(string(ref.Group)) != "" || string(ref.Kind) != kindConfigMap {
			reason, msg = string(gwv1.BackendTLSPolicyReasonInvalidKind), fmt.Sprintf("%s: unsupported %s/%s (want core ConfigMap)", where, ref.Group, ref.Kind)
		} else if cm, ok := cms[nn(p.Namespace, string(ref.Name))]; !ok {
			reason, msg = string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("%s: ConfigMap %s/%s not found", where, p.Namespace, ref.Name)
		} else if pem := cm.Data[policyCAKey]; !x509.NewCertPool().AppendCertsFromPEM([]byte(pem)) {
			reason, msg = string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("%s: ConfigMap %s/%s has no PEM certificate under key %q", where, p.Namespace, ref.Name, policyCAKey)
		} else {
			bundle = append(bundle, strings.TrimSpace(pem)...)
			bundle = append(bundle, '\n')
			continue
		}
		if tp.resolved { // the first problem is the one reported
			tp.resolved, tp.resReason, tp.resMsg = false, reason, msg
		}
	}
	if len(bundle) == 0 {
		tp.accepted, tp.accReason, tp.accMsg = false, string(gwv1.BackendTLSPolicyReasonNoValidCACertificate), "no valid CA certificate: "+tp.resMsg
		tp.invalidBackend = fmt.Sprintf("BackendTLSPolicy %s has no valid CA certificate", name)
		return tp
	}
	out.CACertPEM = bundle
	tp.tls = out
	return tp
}

// applyBackendTLS gives b the TLS settings of the policy that applies to the Service port sp
// (a policy naming the port takes precedence over one naming the whole Service). A policy
// without a usable CA certificate leaves b without endpoints, so its requests get a 500.
func (t *translator) applyBackendTLS(b *ir.Backend, ns string, svc *corev1.Service, sp *corev1.ServicePort) {
	idx := t.btls
	if len(idx.winner) == 0 {
		return
	}
	k := nn(ns, svc.Name)
	tp := idx.winner[tlsTarget{svc: k, section: sp.Name}]
	if tp == nil {
		tp = idx.winner[tlsTarget{svc: k}]
	}
	if tp == nil {
		return
	}
	if tp.tls == nil {
		b.Endpoints, b.Invalid = nil, tp.invalidBackend
		return
	}
	b.TLS = tp.tls
}

// policyUse says that a route of Gateway uses a Service port policy targets.
type policyUse struct {
	policy  types.NamespacedName
	gateway types.NamespacedName
}

// httpPolicyUses and grpcPolicyUses: see policyUses.
func (t *translator) httpPolicyUses(r *gwv1.HTTPRoute) []policyUse {
	if len(t.btls.list) == 0 {
		return nil
	}
	var refs []gwv1.BackendObjectReference
	for _, rule := range r.Spec.Rules {
		for _, br := range rule.BackendRefs {
			refs = append(refs, br.BackendObjectReference)
		}
	}
	return t.policyUses(r.Namespace, r.Spec.ParentRefs, refs)
}

func (t *translator) grpcPolicyUses(r *gwv1.GRPCRoute) []policyUse {
	if len(t.btls.list) == 0 {
		return nil
	}
	var refs []gwv1.BackendObjectReference
	for _, rule := range r.Spec.Rules {
		for _, br := range rule.BackendRefs {
			refs = append(refs, br.BackendObjectReference)
		}
	}
	return t.policyUses(r.Namespace, r.Spec.ParentRefs, refs)
}

// policyUses pairs every policy that targets a Service port used by one of an HTTPRoute's or
// GRPCRoute's backendRefs (refs) with each Gateway of ours the route names as parent: those
// Gateways are the policy's ancestors. It reads the route itself rather than its translation
// (a backendRef that failed still counts).
func (t *translator) policyUses(routeNS string, parents []gwv1.ParentReference, refs []gwv1.BackendObjectReference) []policyUse {
	var gws []types.NamespacedName
	for _, ref := range parents {
		if (ref.Group != nil && ptrStr(ref.Group) != gatewayGroup) || (ref.Kind != nil && ptrStr(ref.Kind) != kindGateway) {
			continue
		}
		ns := routeNS
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		if k := nn(ns, string(ref.Name)); t.gateways[k] != nil && !slices.Contains(gws, k) {
			gws = append(gws, k)
		}
	}
	if len(gws) == 0 {
		return nil
	}
	var out []policyUse
	for _, ref := range refs {
		if coreGroup(ptrStr(ref.Group)) != "" || (ref.Kind != nil && *ref.Kind != kindService) || ref.Port == nil {
			continue
		}
		ns := routeNS
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		t.dependOn(nn(ns, string(ref.Name)))
		svc := t.services[nn(ns, string(ref.Name))]
		if svc == nil {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Port != int32(*ref.Port) || servicePortProtocol(sp.Protocol) != corev1.ProtocolTCP {
				continue
			}
			for _, k := range []tlsTarget{{svc: nn(ns, svc.Name), section: sp.Name}, {svc: nn(ns, svc.Name)}} {
				for _, tp := range t.btls.all[k] {
					for _, g := range gws {
						out = append(out, policyUse{policy: nn(tp.p.Namespace, tp.p.Name), gateway: g})
					}
				}
			}
		}
	}
	return out
}

// backendTLSStatuses gives every policy that a route in results uses (policyUses) its
// ancestor statuses, one per Gateway.
func (e *Env) backendTLSStatuses(results []RouteResult) map[types.NamespacedName][]gwv1.PolicyAncestorStatus {
	idx := e.btls
	if len(idx.list) == 0 {
		return nil
	}
	ancestors := map[types.NamespacedName]map[types.NamespacedName]bool{}
	for i := range results {
		for _, u := range results[i].policyUses {
			if ancestors[u.policy] == nil {
				ancestors[u.policy] = map[types.NamespacedName]bool{}
			}
			ancestors[u.policy][u.gateway] = true
		}
	}
	out := map[types.NamespacedName][]gwv1.PolicyAncestorStatus{}
	for _, tp := range idx.list {
		k := nn(tp.p.Namespace, tp.p.Name)
		if len(ancestors[k]) == 0 {
			continue
		}
		gen := tp.p.Generation
		accepted := cond(gwv1.PolicyConditionAccepted, tp.accepted, tp.accReason, gen, tp.accMsg)
		if tp.conflicted {
			accepted = cond(gwv1.PolicyConditionAccepted, false, gwv1.PolicyReasonConflicted, gen,
				"an older BackendTLSPolicy (or one earlier by namespace/name) targets the same Service and sectionName")
		}
		conds := []metav1.Condition{accepted, cond(gwv1.BackendTLSPolicyConditionResolvedRefs, tp.resolved, tp.resReason, gen, tp.resMsg)}
		gws := slices.SortedFunc(maps.Keys(ancestors[k]), func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
		var st []gwv1.PolicyAncestorStatus
		for _, g := range gws {
			group, kind, ns := gwv1.Group(gatewayGroup), gwv1.Kind(kindGateway), gwv1.Namespace(g.Namespace)
			st = append(st, gwv1.PolicyAncestorStatus{
				AncestorRef:    gwv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwv1.ObjectName(g.Name)},
				ControllerName: gwv1.GatewayController(e.in.ControllerName),
				Conditions:     slices.Clone(conds),
			})
		}
		out[k] = st
	}
	return out
}

// backendTLSConfigMapRefs are the ConfigMaps the BackendTLSPolicies name as CA certificates
// (in their own namespace: the API allows no other).
func backendTLSConfigMapRefs(in *Input) []types.NamespacedName {
	var out []types.NamespacedName
	for _, p := range in.BackendTLSPolicies {
		for _, ref := range p.Spec.Validation.CACertificateRefs {
			if coreGroup(string(ref.Group)) == "" && string(ref.Kind) == kindConfigMap {
				out = append(out, nn(p.Namespace, string(ref.Name)))
			}
		}
	}
	return out
}

// backendClientCertRef is the Secret a Gateway names as its backend client certificate, if
// it may: a core Secret in its namespace, or in another one whose ReferenceGrant allows it.
// reason and msg say why not (Gateway ResolvedRefs reasons).
func (t *translator) backendClientCertRef(gw *gwv1.Gateway) (k types.NamespacedName, set bool, reason gwv1.GatewayConditionReason, msg string) {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Backend == nil || gw.Spec.TLS.Backend.ClientCertificateRef == nil {
		return k, false, "", ""
	}
	ref := gw.Spec.TLS.Backend.ClientCertificateRef
	const where = "spec.tls.backend.clientCertificateRef"
	g, kind := ptrStr(ref.Group), ptrStr(ref.Kind)
	if kind == "" {
		kind = kindSecret
	}
	if coreGroup(g) != "" || kind != kindSecret {
		return k, true, gwv1.GatewayReasonInvalidClientCertificateRef, fmt.Sprintf("%s: unsupported %s/%s (want core Secret)", where, g, kind)
	}
	ns := gw.Namespace
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	if ns != gw.Namespace && !t.granted(gatewayGroup, kindGateway, gw.Namespace, "", kindSecret, ns, string(ref.Name)) {
		return k, true, gwv1.GatewayReasonRefNotPermitted, fmt.Sprintf("%s: Secret %s/%s is in another namespace and no ReferenceGrant allows it", where, ns, ref.Name)
	}
	return nn(ns, string(ref.Name)), true, "", ""
}

// backendClientCert resolves a Gateway's backend client certificate. set is false when the
// Gateway names none; otherwise the ResolvedRefs condition it yields says whether cert is
// usable (nil when not).
func (t *translator) backendClientCert(gw *gwv1.Gateway) (cert *ir.Certificate, set bool, c metav1.Condition) {
	k, set, reason, msg := t.backendClientCertRef(gw)
	if !set {
		return nil, false, c
	}
	if reason == "" {
		s, ok := t.secrets[k]
		switch {
		case !ok:
			reason, msg = gwv1.GatewayReasonInvalidClientCertificateRef, fmt.Sprintf("spec.tls.backend.clientCertificateRef: Secret %s not found", k)
		default:
			crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
			if _, err := tls.X509KeyPair(crt, key); err != nil {
				reason, msg = gwv1.GatewayReasonInvalidClientCertificateRef, fmt.Sprintf("spec.tls.backend.clientCertificateRef: Secret %s does not hold a valid tls.crt and tls.key: %v", k, err)
			} else {
				cert = &ir.Certificate{Name: k.String(), CertPEM: crt, KeyPEM: key}
			}
		}
	}
	if cert == nil {
		return nil, true, cond(gwv1.GatewayConditionResolvedRefs, false, reason, gw.Generation, msg)
	}
	return cert, true, cond(gwv1.GatewayConditionResolvedRefs, true, gwv1.GatewayReasonResolvedRefs, gw.Generation, "all references resolved")
}

// gatewayBackendTLS resolves gs's backend client certificate (for finishGateway) and adds the
// Gateway's ResolvedRefs condition when it names one: False when the reference is not usable,
// else False (ListenersNotResolved) when a listener's references are not resolved, else True.
func (t *translator) gatewayBackendTLS(gs *gatewayState) {
	cert, set, c := t.backendClientCert(gs.gw)
	if !set {
		return
	}
	gs.clientCert = cert
	if c.Status == metav1.ConditionTrue {
		for _, ls := range gs.listeners {
			for _, lc := range ls.conds {
				if lc.Type == string(gwv1.ListenerConditionResolvedRefs) && lc.Status != metav1.ConditionTrue {
					c = cond(gwv1.GatewayConditionResolvedRefs, false, gwv1.GatewayReasonListenersNotResolved, gs.gw.Generation, fmt.Sprintf("listener %q: %s", ls.spec.Name, lc.Message))
				}
			}
		}
	}
	gs.conds = append(gs.conds, c)
}
