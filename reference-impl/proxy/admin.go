package proxy

import (
	"fmt"
	"net/http"
	"time"
)

// readyWait is how long /ready holds a request while no snapshot is applied yet, answering as
// soon as one is. The kubelet probes readiness once right after the container starts (a few
// milliseconds before the proxy has connected to the controller and applied its first
// snapshot) and then every periodSeconds (1 s): answering that first probe 503 at once cost a
// new Gateway ~0.7 s before its pod was Ready (kubelet log: probe 503 at +0 ms, ready at
// +707 ms), and the upstream suite, which polls once a second, a whole second per Gateway it
// creates. It stays below the probe's timeoutSeconds (1 s) so a proxy that cannot get a
// snapshot still answers 503, not a probe timeout.
const readyWait = 750 * time.Millisecond

// AdminHandler serves /ready (200 once a snapshot is applied, else 503 after waiting up to
// readyWait for one) and /metrics.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !p.waitReady(r, readyWait) {
			http.Error(w, "no snapshot applied yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ready: version %d\n", p.Version())
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		p.metrics.WriteText(w)
	})
	return mux
}

// waitReady reports whether a snapshot is applied, waiting up to max (or until the request
// is cancelled) for the first one. It polls: the wait happens once per proxy start, and a
// 5 ms step is small next to the probe period.
func (p *Proxy) waitReady(r *http.Request, max time.Duration) bool {
	if p.Ready() {
		return true
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if p.Ready() {
				return true
			}
		case <-deadline.C:
			return p.Ready()
		case <-r.Context().Done():
			return false
		}
	}
}
