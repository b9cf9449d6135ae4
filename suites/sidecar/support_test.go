package sidecar

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestNativeSidecarsUnsupported drives the support check with a fake API server that behaves
// like a current one, one that drops the field (feature gate off) and one that refuses it.
func TestNativeSidecarsUnsupported(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		react      k8stesting.ReactionFunc
		wantReason string // substring; empty: supported
		wantErr    bool
	}{
		{name: "supported"},
		{name: "field dropped", react: func(a k8stesting.Action) (bool, runtime.Object, error) {
			p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
			p.Spec.InitContainers[0].RestartPolicy = nil
			return true, p, nil
		}, wantReason: "Kubernetes v1.27.3 does not support native sidecars: the API server dropped initContainers[0].restartPolicy"},
		{name: "field refused", react: func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "native-sidecar-probe", field.ErrorList{
				field.Forbidden(field.NewPath("spec", "initContainers").Index(0).Child("restartPolicy"), "may not be set for init containers"),
			})
		}, wantReason: "Kubernetes v1.27.3 does not support native sidecars: it refused"},
		{name: "other error", react: func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "native-sidecar-probe", nil)
		}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs := fake.NewClientset()
			if tc.react != nil {
				cs.PrependReactor("create", "pods", tc.react)
			}
			reason, err := nativeSidecarsUnsupported(context.Background(), cs, "ns", "img", "v1.27.3")
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v; want error=%v", err, tc.wantErr)
			}
			if tc.wantReason == "" && reason != "" {
				t.Errorf("got skip reason %q; want none", reason)
			}
			if tc.wantReason != "" && !strings.Contains(reason, tc.wantReason) {
				t.Errorf("got skip reason %q; want it to contain %q", reason, tc.wantReason)
			}
		})
	}
}
