package echo_test

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	conformancehttp "sigs.k8s.io/gateway-api/conformance/utils/http"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"
)

// TestUpstreamConformanceHelpersAcceptOurEcho drives our server with upstream conformance's
// own request builder, round tripper (which decodes our JSON into roundtripper.CapturedRequest)
// and verdict function, over HTTP/1.1 and h2c prior knowledge.
func TestUpstreamConformanceHelpersAcceptOurEcho(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	_, port, _ := net.SplitHostPort(f.addr)
	rt := &roundtripper.DefaultRoundTripper{TimeoutConfig: config.DefaultTimeoutConfig()}
	for _, protocol := range []string{"HTTP", roundtripper.H2CPriorKnowledgeProtocol} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			expected := conformancehttp.ExpectedResponse{
				Request: conformancehttp.Request{
					Host:     "conformance.example",
					Path:     "/some/path?a=b",
					Headers:  map[string]string{"X-Echo-Me": "yes"},
					Protocol: protocol,
				},
				ExpectedRequest: &conformancehttp.ExpectedRequest{
					Request:       conformancehttp.Request{Host: "conformance.example", Path: "/some/path?a=b", Headers: map[string]string{"X-Echo-Me": "yes"}},
					AbsentHeaders: []string{"X-Not-Sent"},
					HTTPPort:      port,
				},
				BackendSetResponseHeaders: map[string]string{"X-From-Backend": "set"},
				Response:                  conformancehttp.Response{StatusCodes: []int{200}, Headers: map[string]string{"X-From-Backend": "set"}},
				Namespace:                 testID.Namespace,
			}
			req := conformancehttp.MakeRequest(t, &expected, f.addr, protocol, "http")
			cReq, cRes, err := rt.CaptureRoundTrip(req)
			if err != nil {
				t.Fatalf("CaptureRoundTrip: %v", err)
			}
			if err := conformancehttp.CompareRoundTrip(t, &req, cReq, cRes, expected); err != nil {
				t.Errorf("upstream CompareRoundTrip: %v", err)
			}
			if cReq.Pod != testID.Pod {
				t.Errorf("CapturedRequest.Pod: got %q; want %q", cReq.Pod, testID.Pod)
			}
		})
	}
	t.Run("retry helper with backend name", func(t *testing.T) {
		t.Parallel()
		// The eventually-consistent helper also checks that the pod name starts with Backend.
		timeouts := config.DefaultTimeoutConfig()
		timeouts.RequiredConsecutiveSuccesses = 2
		timeouts.MaxTimeToConsistency = 10 * time.Second
		conformancehttp.MakeRequestAndExpectEventuallyConsistentResponse(t, rt, timeouts, f.addr, conformancehttp.ExpectedResponse{
			Request:   conformancehttp.Request{Path: "/eventually"},
			Backend:   "pod",
			Namespace: testID.Namespace,
		})
	})
}

// TestResponseIsSupersetOfCapturedRequest checks field by field that our JSON decodes into
// upstream's CapturedRequest with the same values we report.
func TestResponseIsSupersetOfCapturedRequest(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	resp, err := http.Get("http://" + f.addr + "/superset?request-id=s")
	if err != nil {
		t.Fatal(err)
	}
	ours := decode(t, resp)
	raw, err := json.Marshal(ours)
	if err != nil {
		t.Fatal(err)
	}
	var theirs roundtripper.CapturedRequest
	if err := json.Unmarshal(raw, &theirs); err != nil {
		t.Fatalf("decode into roundtripper.CapturedRequest: %v", err)
	}
	want := roundtripper.CapturedRequest{
		Path: ours.Path, Host: ours.Host, Method: ours.Method, Protocol: ours.Proto, Headers: ours.Headers,
		HTTPPort: ours.HTTPPort, Namespace: ours.Namespace, Pod: ours.Pod,
	}
	if d := cmp.Diff(want, theirs); d != "" {
		t.Errorf("CapturedRequest (-want +got):\n%s", d)
	}
}
