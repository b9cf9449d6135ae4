package forwardproxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/lifecycle"
)

// syncBuf is a bytes.Buffer safe for the server's and the test's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startProxy serves a proxy to upstream on a loopback listener until the test ends.
func startProxy(t *testing.T, upstream string, events io.Writer) (*Server, string, chan error) {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Upstream: u, Container: "proxy", Events: events})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s, ln.Addr().String(), served
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A request to the proxy reaches the upstream with its path, query and headers, and the answer
// comes back; the proxy's events say when it started, listened and exited, in the lifecycle
// format the sidecar suite's timelines read.
func TestProxiesToUpstreamAndWritesLifecycleEvents(t *testing.T) {
	t.Parallel()
	upLn := listen(t)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "yes")
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" id="+r.Header.Get("X-Request-Id"))
	})}
	go up.Serve(upLn)
	t.Cleanup(func() { up.Close() })

	events := &syncBuf{}
	s, addr, served := startProxy(t, "http://"+upLn.Addr().String(), events)

	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/first-request?x=1", nil)
	req.Header.Set("X-Request-Id", "r1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "GET /first-request?x=1 id=r1" || resp.Header.Get("X-Upstream") != "yes" {
		t.Errorf("through the proxy: got %d %q (X-Upstream %q); want 200 %q from the upstream", resp.StatusCode, body, resp.Header.Get("X-Upstream"), "GET /first-request?x=1 id=r1")
	}

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after Shutdown: got %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return within 5s of Shutdown")
	}
	evs, err := lifecycle.ReadEvents(strings.NewReader(events.String()))
	if err != nil {
		t.Fatalf("events %q: %v", events.String(), err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Container+" "+e.Name)
	}
	if diff := cmp.Diff([]string{"proxy starting", "proxy started", "proxy exiting"}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s\nall: %s", diff, events.String())
	}
	if len(evs) == 3 && (evs[1].Fields["addr"] != addr || evs[2].Fields["reason"] != lifecycle.ReasonSIGTERM) {
		t.Errorf("events %q: want started addr=%s and exiting reason=sigterm", events.String(), addr)
	}
}

// An upstream that is not there is a 502 to the caller, as a mesh proxy answers.
func TestUpstreamDownIsBadGateway(t *testing.T) {
	t.Parallel()
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	_, addr, _ := startProxy(t, "http://"+deadAddr, nil)
	if code, _ := get(t, "http://"+addr+"/"); code != http.StatusBadGateway {
		t.Errorf("GET through a proxy to a closed port: got %d; want 502", code)
	}
}

func TestNewRefusesARelativeUpstream(t *testing.T) {
	t.Parallel()
	for _, u := range []*url.URL{nil, {Path: "/x"}, {Scheme: "http"}} {
		if _, err := New(Options{Upstream: u}); err == nil || !strings.Contains(err.Error(), "want an absolute URL") {
			t.Errorf("New(upstream %v): got %v; want an error asking for an absolute URL", u, err)
		}
	}
}
