package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/internal/wait"
)

// FieldManager is the server-side apply field manager for everything gatecheck applies.
const FieldManager = "gatecheck"

// Object is one decoded manifest document and where it came from (for error messages).
type Object struct {
	Source string // "file.yaml#3": file and 1-based document index
	Obj    *unstructured.Unstructured
}

func (o Object) String() string {
	return fmt.Sprintf("%s %s (%s)", o.Obj.GetKind(), namespacedName(o.Obj), o.Source)
}

func namespacedName(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

// Decode splits a multi-document YAML (or JSON) stream into objects. Empty documents are
// skipped; a document without apiVersion, kind or metadata.name is an error naming it.
func Decode(source string, data []byte) ([]Object, error) {
	var out []Object
	reader := utilyaml.NewYAMLReader(bufioReader(data))
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s#%d: read YAML document: %w", source, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%s#%d: parse YAML: %w", source, i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		where := fmt.Sprintf("%s#%d", source, i)
		switch {
		case u.GetAPIVersion() == "":
			return nil, fmt.Errorf("%s: field apiVersion is required", where)
		case u.GetKind() == "":
			return nil, fmt.Errorf("%s: field kind is required", where)
		case u.GetName() == "":
			return nil, fmt.Errorf("%s: %s: field metadata.name is required", where, u.GetKind())
		}
		if strings.HasSuffix(u.GetKind(), "List") {
			return nil, fmt.Errorf("%s: %s: lists are not supported, write one document per object", where, u.GetKind())
		}
		out = append(out, Object{Source: where, Obj: u})
	}
	return out, nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || string(t) == "---" {
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Applier applies objects with server-side apply, resolving kinds through discovery. It
// refreshes discovery when a kind is unknown, so CRDs and their objects can be applied in one
// run (CRDs first).
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// NewApplier builds an Applier for cfg.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

func (a *Applier) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve kind %s: %w (are its CRDs installed?)", gvk, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = "default"
			u.SetNamespace(ns)
		}
		return a.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

// Apply server-side applies every object in order, forcing ownership of conflicting fields (we
// own what we install). It stops at the first error, naming the object.
func (a *Applier) Apply(ctx context.Context, objs []Object) error {
	for _, o := range objs {
		ri, err := a.resource(o.Obj)
		if err != nil {
			return fmt.Errorf("apply %s: %w", o, err)
		}
		data, err := o.Obj.MarshalJSON()
		if err != nil {
			return fmt.Errorf("apply %s: encode: %w", o, err)
		}
		force := true
		if _, err := ri.Patch(ctx, o.Obj.GetName(), types.ApplyPatchType, data, applyOptions(force)); err != nil {
			return fmt.Errorf("apply %s: %w", o, err)
		}
	}
	return nil
}

// Delete deletes every object in reverse order, ignoring ones already gone.
func (a *Applier) Delete(ctx context.Context, objs []Object) error {
	var errs []error
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		ri, err := a.resource(o.Obj)
		if err != nil {
			if meta.IsNoMatchError(errors.Unwrap(err)) {
				continue
			}
			errs = append(errs, fmt.Errorf("delete %s: %w", o, err))
			continue
		}
		if err := ri.Delete(ctx, o.Obj.GetName(), deleteOptions()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", o, err))
		}
	}
	return errors.Join(errs...)
}

// GVR resolves a kind to its resource, for callers that wait on objects.
func (a *Applier) GVR(gvk schema.GroupVersionKind) (schema.GroupVersionResource, error) {
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	return m.Resource, nil
}

// Dynamic is the dynamic client the Applier uses.
func (a *Applier) Dynamic() dynamic.Interface { return a.dyn }

// WaitGone waits until every object in objs is deleted (a Namespace takes its contents with it,
// so it can take a while), printing progress to out. Deleting returns at once; a run that
// reinstalls straight after would otherwise find a namespace still terminating and be refused.
func (a *Applier) WaitGone(ctx context.Context, objs []Object, timeout time.Duration, out io.Writer) error {
	_, err := wait.For(ctx, "deleted objects to be gone", timeout, wait.Options{Out: out}, func(ctx context.Context) (bool, string, error) {
		var left []string
		for _, o := range objs {
			ri, err := a.resource(o.Obj)
			if err != nil {
				continue // its kind is gone: so is it
			}
			_, err = ri.Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
			switch {
			case isNotFound(err):
			case err != nil:
				return false, "", fmt.Errorf("get %s: %w", o, err)
			default:
				left = append(left, o.String())
			}
		}
		return len(left) == 0, fmt.Sprintf("%d left: %s", len(left), strings.Join(left, ", ")), nil
	})
	return err
}

// Terminating returns the Namespaces among objs that exist and are being deleted.
func (a *Applier) Terminating(ctx context.Context, objs []Object) ([]Object, error) {
	var out []Object
	for _, o := range objs {
		if o.Obj.GetKind() != "Namespace" || o.Obj.GroupVersionKind().Group != "" {
			continue
		}
		ri, err := a.resource(o.Obj)
		if err != nil {
			return nil, err
		}
		got, err := ri.Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", o, err)
		}
		if got.GetDeletionTimestamp() != nil {
			out = append(out, o)
		}
	}
	return out, nil
}

// SplitExistingCRDs returns objs without the CustomResourceDefinitions the cluster already has
// (fresh), and those (existing). An install records only fresh as what it created: a CRD that
// was there before (a Gateway API bundle installed beforehand, which a profile's manifests also
// carry) is never removed on teardown, since deleting a CRD deletes every object of its kind.
func (a *Applier) SplitExistingCRDs(ctx context.Context, objs []Object) (fresh, existing []Object, err error) {
	for _, o := range objs {
		gvk := o.Obj.GroupVersionKind()
		if gvk.Kind != "CustomResourceDefinition" || gvk.Group != "apiextensions.k8s.io" {
			fresh = append(fresh, o)
			continue
		}
		ri, err := a.resource(o.Obj)
		if err != nil {
			return nil, nil, fmt.Errorf("check %s: %w", o, err)
		}
		_, err = ri.Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
		switch {
		case isNotFound(err):
			fresh = append(fresh, o)
		case err != nil:
			return nil, nil, fmt.Errorf("check %s: %w", o, err)
		default:
			existing = append(existing, o)
		}
	}
	return fresh, existing, nil
}
