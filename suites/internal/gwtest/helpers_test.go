package gwtest

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func nestedSlice(m map[string]any, path ...string) ([]any, bool, error) {
	return unstructured.NestedSlice(m, path...)
}

func nestedString(m map[string]any, path ...string) (string, bool, error) {
	return unstructured.NestedString(m, path...)
}

func toString(v any) string { return fmt.Sprint(v) }
