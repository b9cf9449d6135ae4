package proxy

import (
	"fmt"
	"net/http"
)

// AdminHandler serves /ready (200 once a snapshot is applied, else 503) and /metrics.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !p.Ready() {
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
