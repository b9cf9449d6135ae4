package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// The reference controller serves Ingresses of IngressClasses whose controller is ours through
// the Gateway each class names (translate/ingress.go). Here: listing them for translation and
// writing their status addresses, the data-plane Gateway's proxy Service addresses.

// listIngresses adds the Ingresses and IngressClasses to in.
func (r *Reconciler) listIngresses(ctx context.Context, in *translate.Input) error {
	var ings networkingv1.IngressList
	var ics networkingv1.IngressClassList
	for _, l := range []client.ObjectList{&ings, &ics} {
		if err := r.c.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return fmt.Errorf("list %T: %w", l, err)
		}
	}
	in.Ingresses = ptrs(ings.Items)
	in.IngressClasses = ptrs(ics.Items)
	return nil
}

// ingressStatuses queues a status write for every Ingress we serve.
func (r *Reconciler) ingressStatuses(in *translate.Input) {
	dps := translate.IngressDataPlanes(in)
	if len(dps) == 0 {
		return
	}
	gws := map[types.NamespacedName]*gwv1.Gateway{}
	for _, gw := range in.Gateways {
		gws[types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = gw
	}
	for _, ing := range in.Ingresses {
		dp, ok := dps[translate.IngressClassOf(in, ing)]
		if !ok || ing.DeletionTimestamp != nil {
			continue
		}
		gw := gws[dp]
		if gw == nil {
			continue
		}
		key := types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
		r.writes.add("Ingress/"+key.String(), func(ctx context.Context) error { return r.ingressStatus(ctx, key, gw) })
	}
}

// ingressStatus sets status.loadBalancer.ingress of one Ingress to its data plane's addresses.
func (r *Reconciler) ingressStatus(ctx context.Context, key types.NamespacedName, gw *gwv1.Gateway) error {
	var lb []networkingv1.IngressLoadBalancerIngress
	svc := &corev1.Service{}
	err := r.c.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: proxyName(gw)}, svc)
	switch {
	case err == nil:
		addrs, _ := addresses(svc, time.Now(), r.prov.lb.wait(r.opts.LoadBalancerWait))
		for _, a := range addrs {
			if a.Type != nil && *a.Type == gwv1.HostnameAddressType {
				lb = append(lb, networkingv1.IngressLoadBalancerIngress{Hostname: a.Value})
			} else {
				lb = append(lb, networkingv1.IngressLoadBalancerIngress{IP: a.Value})
			}
		}
	case !apierrors.IsNotFound(err):
		return err
	}
	ing := &networkingv1.Ingress{}
	if err := r.c.Get(ctx, key, ing); err != nil {
		return client.IgnoreNotFound(err)
	}
	if equality.Semantic.DeepEqual(ing.Status.LoadBalancer.Ingress, lb) {
		return nil
	}
	ing.Status.LoadBalancer.Ingress = lb
	if err := r.c.Status().Update(ctx, ing); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("status of Ingress %s: %w", key, err)
	}
	return nil
}
