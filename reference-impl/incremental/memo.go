package incremental

import (
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gatecheck/gatecheck/reference-impl/translate"
)

// Translator carries route translations from one translation to the next, so a change to one
// route costs one route's translation instead of all of them. With 1,000 routes a full
// translation takes ~3 ms, on the create-to-serving path of every route change (issue: route
// propagation p99 <= 30 ms on a 2-core machine that also runs the API server). A kept route's
// IR is the same memory from one snapshot to the next, which delivery's per-route diff (package
// delta) sees at once, and its statuses the same slice (status.Writer's seen entries).
//
// A route's result (translate.Env.Route) depends on the route, on the backend Services it
// looked up (with their EndpointSlices) and on everything else the Env holds: Gateways and
// their classes (listener state), Namespaces, Secrets, ConfigMaps, ReferenceGrants and
// BackendTLSPolicies. Routes are keyed by UID and metadata.generation (status writes do not
// bump it, spec changes always do). Each kept route records the version of every Service it
// looked up, so endpoint churn re-translates only the routes of that Service; the rest is
// summarised by one fingerprint of every object's identity and version, and when it changes
// every route is translated again. Objects with neither a generation nor a resourceVersion
// (hand-built test input) cannot be versioned, so their presence turns the memory off for that
// call.
//
// The output is translate.Translate's; TestTranslateMatches and TestRoutesMatchTranslate check
// it over the golden inputs and sequences of changes.
type Translator struct {
	mu   sync.Mutex
	seed maphash.Seed
	// env is the fingerprint of what route results depend on besides Services; ingress that
	// of the Ingresses and IngressClasses, which only Gateway results read.
	env, ingress uint64
	gen          uint64
	routes       map[routeID]*kept
	// services holds each Service's version after the last call: its own and its
	// EndpointSlices'.
	services map[types.NamespacedName]uint64
	// last is what Routes builds on: the Env and listeners of the last call; nil when there is
	// none.
	last *state
	// order is each route kind's ByAge order after the last call, by UID (see sortedByAge).
	order map[string][]types.UID
	// Stats of the last call, for tests and debug logs.
	Hits, Misses int
}

// state is the result of the last call that Routes changes in place.
type state struct {
	env *translate.Env
	// listeners are every listener's routes; a listener's lists may be shared with a published
	// snapshot until owned says this call copied them.
	listeners translate.Listeners
	owned     map[translate.ListenerKey]bool
}

// New returns a Translator that remembers nothing yet.
func New() *Translator {
	return &Translator{seed: maphash.MakeSeed(), routes: map[routeID]*kept{}, order: map[string][]types.UID{}}
}

type routeID struct {
	kind string
	key  types.NamespacedName
}

// kept is one route's translation.
type kept struct {
	uid  types.UID
	gen  int64
	used uint64
	res  translate.RouteResult
	// deps are the versions of res.Services then (0: absent).
	deps []uint64
}

// Translate is translate.Translate(in), re-translating only the routes whose result may have
// changed since the last call.
func (x *Translator) Translate(in *translate.Input) *translate.Output {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.last = nil
	x.Hits, x.Misses = 0, 0
	env, ingress, services, ok := x.fingerprint(in)
	if !ok {
		clear(x.routes)
		return translate.Translate(in)
	}
	if env != x.env {
		// Something routes depend on changed: nothing kept is trusted.
		clear(x.routes)
		x.env = env
	}
	x.ingress, x.services = ingress, services
	x.gen++
	e := translate.NewEnv(in)
	results := make([]translate.RouteResult, 0, len(in.HTTPRoutes)+len(in.GRPCRoutes)+len(in.TCPRoutes)+len(in.UDPRoutes)+len(in.TLSRoutes))
	results = appendResults(x, e, results, kindHTTP, in.HTTPRoutes)
	results = appendResults(x, e, results, kindGRPC, in.GRPCRoutes)
	results = appendResults(x, e, results, kindTCP, in.TCPRoutes)
	results = appendResults(x, e, results, kindUDP, in.UDPRoutes)
	results = appendResults(x, e, results, kindTLS, in.TLSRoutes)
	for k, r := range x.routes {
		if r.used != x.gen {
			delete(x.routes, k) // the route is gone
		}
	}
	ls := translate.Attach(results)
	out := e.Output(ls, results)
	x.last = &state{env: e, listeners: ls}
	return out
}

const (
	kindHTTP = "HTTPRoute"
	kindGRPC = "GRPCRoute"
	kindTCP  = "TCPRoute"
	kindUDP  = "UDPRoute"
	kindTLS  = "TLSRoute"
)

// appendResults appends the results of routes, oldest first, kept or translated.
func appendResults[T metav1.Object](x *Translator, e *translate.Env, results []translate.RouteResult, kind string, routes []T) []translate.RouteResult {
	for _, r := range sortedByAge(x, kind, routes) {
		results = append(results, x.route(e, kind, r))
	}
	return results
}

// route is the result of r: the kept one when it is still current, else a new translation,
// kept when r is versioned.
func (x *Translator) route(e *translate.Env, kind string, r metav1.Object) translate.RouteResult {
	id := routeID{kind, types.NamespacedName{Namespace: r.GetNamespace(), Name: r.GetName()}}
	k, ok := x.routes[id]
	if ok && k.uid == r.GetUID() && k.gen == r.GetGeneration() && x.depsCurrent(k) {
		k.used = x.gen
		x.Hits++
		return k.res
	}
	x.Misses++
	res := e.Route(r)
	if r.GetUID() == "" || r.GetGeneration() == 0 {
		delete(x.routes, id) // not versioned: translate it every time
		return res
	}
	k = &kept{uid: r.GetUID(), gen: r.GetGeneration(), used: x.gen, res: res, deps: make([]uint64, len(res.Services))}
	for i, s := range res.Services {
		k.deps[i] = x.services[s]
	}
	x.routes[id] = k
	return res
}

// depsCurrent says whether every Service the route looked up has the version it had then.
func (x *Translator) depsCurrent(k *kept) bool {
	for i, s := range k.res.Services {
		if x.services[s] != k.deps[i] {
			return false
		}
	}
	return true
}

// fingerprint summarises every input except routes: env what route results depend on besides
// Services, ingress the Ingresses and IngressClasses, services each Service's version (its own
// and its EndpointSlices'). ok is false when an object carries no version to tell its changes
// by.
func (x *Translator) fingerprint(in *translate.Input) (env, ingress uint64, services map[types.NamespacedName]uint64, ok bool) {
	ok = true
	var h maphash.Hash
	h.SetSeed(x.seed)
	hash := func(kind, ns, name string, uid types.UID, gen int64, rv string, deleting bool) uint64 {
		if gen == 0 && rv == "" {
			ok = false
			return 0
		}
		h.Reset()
		h.WriteString(kind)
		h.WriteByte(0)
		h.WriteString(ns)
		h.WriteByte(0)
		h.WriteString(name)
		h.WriteByte(0)
		h.WriteString(string(uid))
		h.WriteByte(0)
		if gen != 0 {
			// Generation, not resourceVersion: the controller's own status writes must not
			// invalidate every route.
			h.WriteString(strconv.FormatInt(gen, 10))
		} else {
			h.WriteString(rv)
		}
		if deleting {
			h.WriteByte(1)
		}
		return h.Sum64()
	}
	// Sums do not depend on the (unspecified) order of the lists.
	add := func(sum *uint64, kind, ns, name string, uid types.UID, gen int64, rv string, deleting bool) {
		*sum += hash(kind, ns, name, uid, gen, rv, deleting)
	}
	h.Reset()
	h.WriteString(in.ControllerName)
	env += h.Sum64()
	for _, o := range in.GatewayClasses {
		add(&env, "GatewayClass", "", o.Name, o.UID, o.Generation, o.ResourceVersion, o.DeletionTimestamp != nil)
	}
	for _, o := range in.Gateways {
		add(&env, "Gateway", o.Namespace, o.Name, o.UID, o.Generation, o.ResourceVersion, o.DeletionTimestamp != nil)
	}
	for _, o := range in.ReferenceGrants {
		add(&env, "ReferenceGrant", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false)
	}
	for _, o := range in.Namespaces {
		add(&env, "Namespace", "", o.Name, o.UID, 0, o.ResourceVersion, false)
	}
	// Services and their EndpointSlices are versioned per Service (see kept.deps).
	services = make(map[types.NamespacedName]uint64, len(in.Services))
	for _, o := range in.Services {
		services[types.NamespacedName{Namespace: o.Namespace, Name: o.Name}] += hash("Service", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false) | 1
	}
	for _, o := range in.EndpointSlices {
		if svc := o.Labels[discoveryv1.LabelServiceName]; svc != "" { // translation ignores the rest
			services[types.NamespacedName{Namespace: o.Namespace, Name: svc}] += hash("EndpointSlice", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false)
		}
	}
	for _, o := range in.Secrets {
		add(&env, "Secret", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false)
	}
	for _, o := range in.ConfigMaps {
		add(&env, "ConfigMap", o.Namespace, o.Name, o.UID, 0, o.ResourceVersion, false)
	}
	for _, o := range in.BackendTLSPolicies {
		add(&env, "BackendTLSPolicy", o.Namespace, o.Name, o.UID, o.Generation, o.ResourceVersion, o.DeletionTimestamp != nil)
	}
	for _, o := range in.Ingresses {
		add(&ingress, "Ingress", o.Namespace, o.Name, o.UID, o.Generation, o.ResourceVersion, o.DeletionTimestamp != nil)
	}
	for _, o := range in.IngressClasses {
		add(&ingress, "IngressClass", "", o.Name, o.UID, o.Generation, o.ResourceVersion, o.DeletionTimestamp != nil)
	}
	// The counts guard against two changes cancelling out in the sums.
	h.Reset()
	fmt.Fprint(&h, len(in.GatewayClasses), len(in.Gateways), len(in.ReferenceGrants), len(in.Namespaces), len(in.Secrets), len(in.ConfigMaps), len(in.BackendTLSPolicies))
	env += h.Sum64()
	h.Reset()
	fmt.Fprint(&h, len(in.Ingresses), len(in.IngressClasses))
	ingress += h.Sum64()
	return env, ingress, services, ok
}
