package controller

// Gateway programming: the delivery address, the proxies, and the Gateway's status once its
// proxies acknowledged the published snapshot.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// deliveryURL resolves the address proxies dial, as an IP (there is no cluster DNS).
func (r *Reconciler) deliveryURL(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.url != "" {
		return r.url, nil
	}
	if r.opts.DeliveryURL != "" {
		r.url = r.opts.DeliveryURL
		return r.url, nil
	}
	_, port, err := net.SplitHostPort(r.opts.DeliveryAddr)
	if err != nil {
		return "", fmt.Errorf("delivery address %q: %w", r.opts.DeliveryAddr, err)
	}
	if r.opts.ControllerService.Name != "" {
		svc := &corev1.Service{}
		if err := r.c.Get(ctx, r.opts.ControllerService, svc); err != nil {
			return "", fmt.Errorf("look up controller Service %s for the delivery address: %w", r.opts.ControllerService, err)
		}
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			for _, p := range svc.Spec.Ports {
				if p.TargetPort.IntValue() == mustAtoi(port) || p.Name == "delivery" {
					port = strconv.Itoa(int(p.Port))
				}
			}
			r.url = "https://" + net.JoinHostPort(ip, port)
			return r.url, nil
		}
	}
	if ip := os.Getenv("POD_IP"); ip != "" {
		r.url = "https://" + net.JoinHostPort(ip, port)
		return r.url, nil
	}
	return "", errors.New("no delivery address: set DeliveryURL, a ControllerService with a ClusterIP, or POD_IP")
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// clashRecheck is how long a Gateway whose proxy names clash waits before the next attempt.
const clashRecheck = 10 * time.Second

// gateway provisions the proxies of one Gateway and writes its status once its proxies have
// acknowledged the published snapshot (or a short wait ran out).
func (r *Reconciler) gateway(ctx context.Context, gw *gwv1.Gateway, res *translate.GatewayResult, url string) error {
	key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	dp := translate.DataPlane{}
	var errs []error
	var clash *nameClashError
	if res.Valid && url != "" {
		err := r.prov.Ensure(ctx, gw, res.Ports, url, res.UDPPorts...)
		if errors.As(err, &clash) {
			// Data, not a failure to retry at once: the Gateway says so, and the controller
			// looks again in a while (the other object's deletion may not be watched).
			r.log.Warn("proxy name conflict", "gateway", key.String(), "error", err)
			time.AfterFunc(clashRecheck, r.kick)
			dp.Reason, dp.Message = NameConflict, clash.Error()
			translate.ApplyDataPlane(res, dp)
			_, err := r.stat.Gateway(ctx, key, res.Status)
			return err
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("provision proxies of gateway %s: %w", key, err))
		}
		svc := &corev1.Service{}
		if err := r.c.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: proxyName(gw)}, svc); err == nil {
			now := time.Now()
			want := translate.RequestedAddresses(gw)
			r.prov.lb.observe(svc, now, r.opts.LoadBalancerWait)
			lbWait := r.opts.LoadBalancerWait
			if len(want) == 0 {
				lbWait = r.prov.lb.wait(lbWait) // none on this cluster: the ClusterIP at once
			}
			st := gatewayAddresses(svc, want, r.prov.addressesRequestedSince(gw.UID, want, now), now, lbWait)
			dp.Addresses, dp.AddressReason, dp.AddressMessage = st.addrs, st.reason, st.msg
			if st.retry > 0 {
				// Nothing else may change once the wait runs out: ask again then.
				time.AfterFunc(st.retry+100*time.Millisecond, r.kick)
			}
		}
		ready, err := r.readyProxies(ctx, gw)
		if err != nil {
			errs = append(errs, err)
		}
		dp.Ready, dp.Message = r.delivery.WaitAcked(ctx, key, ready, time.Second)
		if !dp.Ready {
			// Re-check after arming, so an ack landing in between is not lost.
			r.delivery.NotifyOnAck(key)
			dp.Ready, dp.Message = r.delivery.AckState(key, ready)
		}
	} else if !res.Valid {
		if err := r.prov.Remove(ctx, gw); err != nil {
			errs = append(errs, err)
		}
	}
	translate.ApplyDataPlane(res, dp)
	if _, err := r.stat.Gateway(ctx, key, res.Status); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// readyProxies lists the names of the Gateway's proxy pods that are Ready and not terminating.
func (r *Reconciler) readyProxies(ctx context.Context, gw *gwv1.Gateway) ([]string, error) {
	var pods corev1.PodList
	if err := r.c.List(ctx, &pods, client.InNamespace(gw.Namespace), client.MatchingLabels{LabelProxyFor: gatewayHash(gw)}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list proxy pods of gateway %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				out = append(out, p.Name)
			}
		}
	}
	return out, nil
}
