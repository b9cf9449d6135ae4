package install

import (
	"strings"
	"testing"
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
