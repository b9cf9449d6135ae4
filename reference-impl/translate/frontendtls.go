package translate

import (
	"crypto/x509"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// caCertKey is the ConfigMap key holding a PEM CA certificate bundle (Gateway API core
// support for caCertificateRefs).
const caCertKey = "ca.crt"

// frontendResult is an HTTPS listener's client certificate validation as resolved from its
// Gateway's spec.tls.frontend.
type frontendResult struct {
	// validation goes into the listener's IR; nil when the port has no validation or no
	// reference resolved.
	validation *ir.ClientValidation
	// resReason and resMsg, when resReason is set, make ResolvedRefs False: a reference did
	// not resolve.
	resReason, resMsg string
	// noneValid: every reference failed, so the listener is not Accepted
	// (NoValidCACertificate).
	noneValid bool
}

// frontendTLSFor returns the frontend TLS configuration for a port: the perPort entry for
// it, else the default; nil without spec.tls.frontend.
func frontendTLSFor(gw *gwv1.Gateway, port gwv1.PortNumber) *gwv1.TLSConfig {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return nil
	}
	f := gw.Spec.TLS.Frontend
	for i := range f.PerPort {
		if f.PerPort[i].Port == port {
			return &f.PerPort[i].TLS
		}
	}
	return &f.Default
}

// frontendValidation resolves the client certificate validation of HTTPS listener l: the CA
// certificate ConfigMaps its port's configuration references. A reference of another kind
// is InvalidCACertificateKind, one into another namespace without a ReferenceGrant is
// RefNotPermitted, a missing ConfigMap or one without a PEM certificate under ca.crt is
// InvalidCACertificateRef; the first problem gives ResolvedRefs its reason, the message
// names every one. The references that resolve are used.
func (t *translator) frontendValidation(gw *gwv1.Gateway, l gwv1.Listener) frontendResult {
	cfg := frontendTLSFor(gw, l.Port)
	if cfg == nil || cfg.Validation == nil {
		return frontendResult{}
	}
	where := "spec.tls.frontend.default.validation"
	for i, p := range gw.Spec.TLS.Frontend.PerPort {
		if p.Port == l.Port {
			where = fmt.Sprintf("spec.tls.frontend.perPort[%d].tls.validation", i)
		}
	}
	v := cfg.Validation
	var res frontendResult
	var problems []string
	fail := func(reason gwv1.ListenerConditionReason, format string, a ...any) {
		if res.resReason == "" {
			res.resReason = string(reason)
		}
		problems = append(problems, fmt.Sprintf(format, a...))
	}
	cv := &ir.ClientValidation{Mode: ir.AllowValidOnly}
	if v.Mode == gwv1.AllowInsecureFallback {
		cv.Mode = ir.AllowInsecureFallback
	}
	if len(v.CACertificateRefs) == 0 {
		fail(gwv1.ListenerReasonInvalidCACertificateRef, "%s.caCertificateRefs: empty", where)
	}
	for i, ref := range v.CACertificateRefs {
		rw := fmt.Sprintf("%s.caCertificateRefs[%d]", where, i)
		if coreGroup(string(ref.Group)) != "" || string(ref.Kind) != kindConfigMap {
			fail(gwv1.ListenerReasonInvalidCACertificateKind, "%s: unsupported %s %s (want a core ConfigMap)", rw, groupKind(string(ref.Group), string(ref.Kind)), ref.Name)
			continue
		}
		k, ok := t.permittedCARef(gw, ref)
		if !ok {
			fail(gwv1.ListenerReasonRefNotPermitted, "%s: ConfigMap %s/%s is in another namespace and no ReferenceGrant allows it", rw, ptrStr(ref.Namespace), ref.Name)
			continue
		}
		cm := t.configMap(k)
		if cm == nil {
			fail(gwv1.ListenerReasonInvalidCACertificateRef, "%s: ConfigMap %s not found", rw, k)
			continue
		}
		pem := cm.Data[caCertKey]
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(pem)) {
			fail(gwv1.ListenerReasonInvalidCACertificateRef, "%s: ConfigMap %s has no PEM CA certificate under key %s", rw, k, caCertKey)
			continue
		}
		if len(cv.CACertPEM) > 0 && cv.CACertPEM[len(cv.CACertPEM)-1] != '\n' {
			cv.CACertPEM = append(cv.CACertPEM, '\n')
		}
		cv.CACertPEM = append(cv.CACertPEM, pem...)
		cv.Sources = append(cv.Sources, k.String())
	}
	if len(problems) > 0 {
		res.resMsg = strings.Join(problems, "; ")
	}
	if len(cv.Sources) == 0 {
		res.noneValid = true
		return res
	}
	res.validation = cv
	return res
}

func groupKind(group, kind string) string {
	if coreGroup(group) == "" {
		return "core " + kind
	}
	return group + "/" + kind
}

// insecureFrontendCondition is the Gateway's InsecureFrontendValidationMode condition: True
// while its default or a per-port frontend validation is AllowInsecureFallback; none
// otherwise (the spec removes it when the mode goes back to AllowValidOnly).
func insecureFrontendCondition(gw *gwv1.Gateway) []metav1.Condition {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return nil
	}
	f := gw.Spec.TLS.Frontend
	var where []string
	if v := f.Default.Validation; v != nil && v.Mode == gwv1.AllowInsecureFallback {
		where = append(where, "spec.tls.frontend.default")
	}
	for i, p := range f.PerPort {
		if v := p.TLS.Validation; v != nil && v.Mode == gwv1.AllowInsecureFallback {
			where = append(where, fmt.Sprintf("spec.tls.frontend.perPort[%d] (port %d)", i, p.Port))
		}
	}
	if len(where) == 0 {
		return nil
	}
	return []metav1.Condition{cond(gwv1.GatewayConditionInsecureFrontendValidationMode, true, gwv1.GatewayReasonConfigurationChanged, gw.Generation,
		fmt.Sprintf("client certificates are requested but not required (AllowInsecureFallback): %s", strings.Join(where, ", ")))}
}

// configMap returns the ConfigMap k from the input, or nil. in.ConfigMaps holds only the
// referenced ones (ConfigMapRefs), so a scan is short.
func (t *translator) configMap(k types.NamespacedName) *corev1.ConfigMap {
	for _, cm := range t.in.ConfigMaps {
		if cm.Namespace == k.Namespace && cm.Name == k.Name {
			return cm
		}
	}
	return nil
}
