package netguard

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		want       []string
	}{
		{"plain", "-A FORWARD -s 10.244.0.0/16 -o eth0 -j REJECT", []string{"-A", "FORWARD", "-s", "10.244.0.0/16", "-o", "eth0", "-j", "REJECT"}},
		{"quoted comment", `-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`, []string{"-A", "OUTPUT", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"}},
		{"escaped quote", `-A X -m comment --comment "a \"b\"" -j ACCEPT`, []string{"-A", "X", "-m", "comment", "--comment", `a "b"`, "-j", "ACCEPT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := SplitRule(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := SplitRule(`-A X --comment "open`); err == nil {
		t.Errorf("unbalanced quote: got nil error; want one")
	}
}

func TestLeftovers(t *testing.T) {
	t.Parallel()
	save := `-P PREROUTING ACCEPT
-P POSTROUTING ACCEPT
-N CNI-8f2a
-N DOCKER
-N KUBE-SERVICES
-N KUBE-POSTROUTING
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -s 10.244.0.5/32 -m comment --comment "name: \"gatecheck\" id: \"abc\"" -j CNI-8f2a
-A POSTROUTING -j DOCKER
-A CNI-8f2a -d 10.244.0.0/24 -j ACCEPT
-A KUBE-SERVICES -j KUBE-POSTROUTING
`
	chains, jumps, err := Leftovers(save, []string{"KUBE-", "CNI-"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"CNI-8f2a", "KUBE-SERVICES", "KUBE-POSTROUTING"}, chains); diff != "" {
		t.Errorf("chains (-want +got):\n%s", diff)
	}
	want := [][]string{
		{"-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"},
		{"-A", "POSTROUTING", "-s", "10.244.0.5/32", "-m", "comment", "--comment", `name: "gatecheck" id: "abc"`, "-j", "CNI-8f2a"},
	}
	if diff := cmp.Diff(want, jumps); diff != "" {
		t.Errorf("jumps (-want +got):\n%s", diff)
	}
}

// TestLeftoversKeepsForeignChains: chains that were there before the cluster stay, and so
// do the rules jumping to them; a rule in a kept chain jumping to one of ours goes, or our
// chain could not be deleted.
func TestLeftoversKeepsForeignChains(t *testing.T) {
	t.Parallel()
	save := `-P PREROUTING ACCEPT
-N CNI-8f2a
-N KUBE-SERVICES
-N KUBE-SVC-ABC
-N KUBE-FOREIGN
-A PREROUTING -j KUBE-SERVICES
-A PREROUTING -j KUBE-FOREIGN
-A PREROUTING -j CNI-8f2a
-A KUBE-SERVICES -j KUBE-SVC-ABC
-A KUBE-FOREIGN -j ACCEPT
-A KUBE-SVC-ABC -j KUBE-FOREIGN
`
	chains, jumps, err := Leftovers(save, []string{"KUBE-", "CNI-"}, []string{"KUBE-SERVICES", "KUBE-FOREIGN"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"CNI-8f2a", "KUBE-SVC-ABC"}, chains); diff != "" {
		t.Errorf("chains (-want +got):\n%s", diff)
	}
	want := [][]string{
		{"-A", "PREROUTING", "-j", "CNI-8f2a"},
		{"-A", "KUBE-SERVICES", "-j", "KUBE-SVC-ABC"},
	}
	if diff := cmp.Diff(want, jumps); diff != "" {
		t.Errorf("jumps (-want +got):\n%s", diff)
	}
}

func TestGuardRules(t *testing.T) {
	t.Parallel()
	got := GuardRules("eth0", "10.244.0.0/16", "10.0.0.0/24", "10.0.1.0/24")
	want := []Rule{
		{Table: "filter", Chain: "FORWARD", Spec: []string{"-s", "10.244.0.0/16", "-o", "eth0", "-m", "comment", "--comment", Comment, "-j", "REJECT"}},
		{Table: "filter", Chain: "OUTPUT", Spec: []string{"-d", "10.0.0.0/24", "-o", "eth0", "-m", "comment", "--comment", Comment, "-j", "REJECT"}},
		{Table: "filter", Chain: "OUTPUT", Spec: []string{"-d", "10.0.1.0/24", "-o", "eth0", "-m", "comment", "--comment", Comment, "-j", "REJECT"}},
		{Table: "filter", Chain: "FORWARD", Spec: []string{"-d", "10.0.1.0/24", "-o", "eth0", "-m", "comment", "--comment", Comment, "-j", "REJECT"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDefaultRouteInterface(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, table, want string
		wantErr           bool
	}{
		{"single", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nlo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n", "eth0", false},
		{"lowest metric wins", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nwlan0\t00000000\t01000A0A\t0003\t0\t0\t600\t00000000\neth1\t00000000\t01000A0A\t0003\t0\t0\t100\t00000000\n", "eth1", false},
		{"no default", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DefaultRouteInterface(tt.table)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
