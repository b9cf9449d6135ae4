package install

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	discoveryfake "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/restmapper"
	clienttesting "k8s.io/client-go/testing"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	objs, err := Decode("m.yaml", []byte("# leading comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[1].String() != "Service a/s (m.yaml#4)" {
		t.Fatalf("Decode = %v; want Namespace a and Service a/s (m.yaml#4)", objs)
	}
}

func TestDecodeErrorsNameDocumentAndField(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"no kind", "apiVersion: v1\nmetadata:\n  name: x\n", "m.yaml#1: field kind is required"},
		{"no name", "apiVersion: v1\nkind: Service\nmetadata: {}\n", "m.yaml#1: Service: field metadata.name is required"},
		{"no apiVersion", "kind: Service\n", "field apiVersion is required"},
		{"bad yaml", "apiVersion: v1\nkind: [\n", "m.yaml#1: parse YAML"},
		{"list", "apiVersion: v1\nkind: List\nmetadata:\n  name: l\n", "lists are not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode("m.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode() = %v; want error containing %q", err, tc.want)
			}
		})
	}
}

func TestSplitExistingCRDs(t *testing.T) {
	t.Parallel()
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	existing := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "httproutes.gateway.networking.k8s.io"},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{crdGVR: "CustomResourceDefinitionList"}, existing)
	disc := &discoveryfake.FakeDiscovery{Fake: &clienttesting.Fake{Resources: []*metav1.APIResourceList{
		{GroupVersion: "apiextensions.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "customresourcedefinitions", Kind: "CustomResourceDefinition", Verbs: metav1.Verbs{"get"}}}},
		{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "namespaces", Kind: "Namespace", Verbs: metav1.Verbs{"get"}}}},
	}}}
	a := &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
	objs, err := Decode("m.yaml", []byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
apiVersion: v1
kind: Namespace
metadata: {name: example-system}
`))
	if err != nil {
		t.Fatal(err)
	}
	fresh, had, err := a.SplitExistingCRDs(context.Background(), objs)
	if err != nil {
		t.Fatal(err)
	}
	names := func(os []Object) (out []string) {
		for _, o := range os {
			out = append(out, o.Obj.GetName())
		}
		return out
	}
	if got := strings.Join(names(fresh), ","); got != "widgets.example.com,example-system" {
		t.Errorf("fresh = %s; want widgets.example.com,example-system (what the install creates)", got)
	}
	if got := strings.Join(names(had), ","); got != "httproutes.gateway.networking.k8s.io" {
		t.Errorf("existing = %s; want the CRD the cluster had", got)
	}
}
