package verdict
import "testing"
func TestProbeDesign(t *testing.T) {
	for _, p0 := range []float64{0.1, 0.5, 0.3, 0.01} {
		d, oc0, oc1, ok := designSide(p0, 0.015, 0.03, 5e-5, 0.01, 5000)
		t.Logf("p0=%v ok=%v %v alpha=%.3g asn0=%.0f power=%.5f asn1=%.0f", p0, ok, d, oc0.Fail, oc0.ASN, oc1.Fail, oc1.ASN)
		q0 := 1 - p0
		d, oc0, oc1, ok = designSide(q0, 0.015, 0.03, 5e-5, 0.01, 5000)
		t.Logf("LOWER p0=%v ok=%v %v alpha=%.3g asn0=%.0f power=%.5f asn1=%.0f", p0, ok, d, oc0.Fail, oc0.ASN, oc1.Fail, oc1.ASN)
	}
}
