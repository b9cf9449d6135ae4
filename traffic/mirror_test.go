package traffic

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
	"github.com/gatecheck/gatecheck/verdict"
)

// echoBackend starts a real echo backend (with records) and returns its URL and admin URL.
func echoBackend(t *testing.T, name string) (string, string) {
	t.Helper()
	store := records.NewStore(identity.Identity{Backend: name}, 0)
	srv, err := echo.NewServer(echo.Options{Identity: identity.Identity{Backend: name, Pod: name + "-pod"}, Records: store})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(srv.Handler())
	admin := httptest.NewServer(store.Handler())
	t.Cleanup(web.Close)
	t.Cleanup(admin.Close)
	return web.URL, admin.URL
}

// mirroringGateway stands in for a gateway with a request mirror: it proxies to primary and
// copies a request to mirror with probability p (asynchronously, dropping the answer), or,
// when leak is set, answers with the mirror's response.
func mirroringGateway(t *testing.T, primary, mirror string, p float64, leak bool) string {
	t.Helper()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(11, 12))
	var wg sync.WaitGroup
	forward := func(base string, r *http.Request) (*http.Response, error) {
		req, _ := http.NewRequest(r.Method, base+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		return http.DefaultClient.Do(req)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		copyIt := rng.Float64() < p
		mu.Unlock()
		if copyIt && !leak {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, err := forward(mirror, r); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			}()
		}
		target := primary
		if copyIt && leak {
			target = mirror
		}
		resp, err := forward(target, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(func() { gw.Close(); wg.Wait() })
	return gw.URL
}

func TestMirrorCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fraction float64 // declared
		p        float64 // delivered
		leak     bool
		requests int
		want     verdict.Decision
		wantMsg  string
	}{
		{"full mirror delivered", 1, 1, false, 400, verdict.Pass, "mirror saw 400 of 400 requests (declared 100%): all 400 requests reached the mirror"},
		{"full mirror missing 2%", 1, 0.98, false, 400, verdict.Fail, "requests never reached the mirror"},
		{"mirror never reached", 1, 0, false, 200, verdict.Fail, "mirror saw 0 of 200 requests"},
		{"mirror response leaks to client", 1, 0.1, true, 200, verdict.Fail, "client responses came from the mirror backend mirror"},
		{"10 percent delivered as declared", 0.1, 0.1, false, 3000, verdict.Pass, "mirrored share"},
		{"10 percent declared, 20 delivered", 0.1, 0.2, false, 3000, verdict.Fail, "mirrored share: declared 10%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			primary, _ := echoBackend(t, "primary")
			mirror, admin := echoBackend(t, "mirror")
			gw := mirroringGateway(t, primary, mirror, tc.p, tc.leak)
			m := &MirrorCheck{
				Driver:         &Driver{URL: gw + "/mirror-me", Concurrency: 8},
				Mirrors:        []string{admin},
				Requests:       tc.requests,
				Fraction:       tc.fraction,
				Settle:         3 * time.Second,
				Quiet:          500 * time.Millisecond,
				MirrorIdentity: "mirror",
			}
			rep, err := m.Run(t.Context())
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			t.Logf("%s (seen %d, waited %s)", rep.Verdict.Message, rep.Seen, rep.WaitedFor)
			if rep.Verdict.Decision != tc.want {
				t.Errorf("decision: got %s; want %s", rep.Verdict.Decision, tc.want)
			}
			if !strings.Contains(rep.Verdict.Message, tc.wantMsg) {
				t.Errorf("message: got %q; want it to contain %q", rep.Verdict.Message, tc.wantMsg)
			}
		})
	}
}
