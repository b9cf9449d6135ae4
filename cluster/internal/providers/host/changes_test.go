package host

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeSysctl(t *testing.T, procSys, key, value string) {
	t.Helper()
	p := filepath.Join(procSys, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(value+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readSysctl(t *testing.T, procSys, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(procSys, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestSysctlsRestoredToTheirValuesBeforeUp: a changed sysctl is recorded (on disk, before it
// is written) with its old value, an unchanged one is not, a repeated up (after a killed
// one) keeps the first old value, and restore writes the old values back and empties the
// record.
func TestSysctlsRestoredToTheirValuesBeforeUp(t *testing.T) {
	t.Parallel()
	procSys := t.TempDir()
	state := t.TempDir()
	writeSysctl(t, procSys, "net/ipv4/ip_forward", "0")
	writeSysctl(t, procSys, "net/bridge/bridge-nf-call-iptables", "1")
	path := filepath.Join(state, ChangesFile)

	c, ok, err := loadChanges(path)
	if err != nil || ok {
		t.Fatalf("loadChanges with no file = %v, %v; want a new record", ok, err)
	}
	for _, key := range []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"} {
		if err := c.setSysctl(procSys, key, "1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := readSysctl(t, procSys, "net/ipv4/ip_forward"); got != "1" {
		t.Errorf("ip_forward after up = %q; want 1", got)
	}

	// A killed up, then up again: the record on disk still holds the value before the first.
	again, ok, err := loadChanges(path)
	if err != nil || !ok {
		t.Fatalf("loadChanges after up = %v, %v; want the saved record", ok, err)
	}
	if diff := cmp.Diff(map[string]string{"net/ipv4/ip_forward": "0"}, again.Sysctls); diff != "" {
		t.Errorf("recorded sysctls (-want +got):\n%s", diff)
	}
	if err := again.setSysctl(procSys, "net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if again.Sysctls["net/ipv4/ip_forward"] != "0" {
		t.Errorf("second up recorded ip_forward's old value as %q; want 0 (the value before any up)", again.Sysctls["net/ipv4/ip_forward"])
	}

	if err := again.restoreSysctls(procSys); err != nil {
		t.Fatal(err)
	}
	if got := readSysctl(t, procSys, "net/ipv4/ip_forward"); got != "0" {
		t.Errorf("ip_forward after down = %q; want 0 (its value before up)", got)
	}
	if got := readSysctl(t, procSys, "net/bridge/bridge-nf-call-iptables"); got != "1\n" {
		t.Errorf("bridge-nf-call-iptables after down = %q; want untouched 1", got)
	}
	if len(again.Sysctls) != 0 {
		t.Errorf("record after restore = %v; want empty", again.Sysctls)
	}
	if err := again.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("record after remove: stat = %v; want not exist", err)
	}
}

func TestChangesFileIsRootOnly(t *testing.T) {
	t.Parallel()
	c, _, err := loadChanges(filepath.Join(t.TempDir(), ChangesFile))
	if err != nil {
		t.Fatal(err)
	}
	c.ForeignNetns = []string{"/run/netns/cni-x"}
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(c.path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v; want 0600", c.path, st.Mode().Perm())
	}
}

// TestForeignNetnsKept: netns there before up are foreign, under either of their names.
func TestForeignNetnsKept(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	run := filepath.Join(base, "run", "netns")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	varRun := filepath.Join(base, "var-run-netns")
	if err := os.Symlink(run, varRun); err != nil {
		t.Fatal(err)
	}
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(run, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	touch("cni-theirs")
	touch("other")
	c := &changeLog{}
	c.ForeignNetns = cniNetns([]string{run, varRun})
	if diff := cmp.Diff([]string{filepath.Join(run, "cni-theirs")}, c.ForeignNetns); diff != "" {
		t.Errorf("foreign netns (-want +got):\n%s", diff)
	}
	touch("cni-ours")
	for path, want := range map[string]bool{
		filepath.Join(run, "cni-theirs"):    true,
		filepath.Join(varRun, "cni-theirs"): true,
		filepath.Join(run, "cni-ours"):      false,
	} {
		if got := c.foreignNetns(path); got != want {
			t.Errorf("foreignNetns(%s) = %v; want %v", path, got, want)
		}
	}
}
