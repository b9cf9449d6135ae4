// Package splittest serves a loopback weighted splitter, standing in for a gateway in tests:
// each request is answered by a backend chosen at random by weight, as JSON {"backend": ...}.
package splittest

import (
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
)

// Backend is one identity and its weight.
type Backend struct {
	Name   string
	Weight float64
}

// Splitter is a running loopback splitter.
type Splitter struct {
	*httptest.Server
	// Conns counts accepted connections, including any a client dialed but never used.
	Conns atomic.Int64

	mu       sync.Mutex
	rng      *rand.Rand
	backends []Backend
	total    float64
	status   func(n int64) int
	served   atomic.Int64
	peers    map[string]int
}

// Peers returns how many distinct client connections (remote addresses) carried requests,
// which tells keep-alive from one connection per request.
func (s *Splitter) Peers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

// Options configure a Splitter; the zero value answers 200 from a random-by-weight backend.
type Options struct {
	// Seed makes the choice sequence repeatable.
	Seed uint64
	// H2C serves HTTP/2 without TLS as well as HTTP/1.1.
	H2C bool
	// Status, when set, gives the status code of the n-th request (1-based).
	Status func(n int64) int
	// RequireHeader, when set, answers 404 unless the request has this header and value.
	RequireHeader [2]string
	// RequireHost, when set, answers 404 unless the Host matches.
	RequireHost string
}

// New starts a splitter on 127.0.0.1:0; it is closed by Close.
func New(backends []Backend, o Options) *Splitter {
	s := &Splitter{rng: rand.New(rand.NewPCG(o.Seed, o.Seed+1)), backends: backends, status: o.Status, peers: map[string]int{}}
	for _, b := range backends {
		s.total += b.Weight
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.served.Add(1)
		s.mu.Lock()
		s.peers[r.RemoteAddr]++
		s.mu.Unlock()
		if o.RequireHost != "" && r.Host != o.RequireHost {
			http.Error(w, "no route for host "+r.Host, http.StatusNotFound)
			return
		}
		if k := o.RequireHeader[0]; k != "" && r.Header.Get(k) != o.RequireHeader[1] {
			http.Error(w, "no route matches", http.StatusNotFound)
			return
		}
		code := http.StatusOK
		if s.status != nil {
			code = s.status(n)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"backend":   s.pick(),
			"pod":       "splitter-pod",
			"requestId": r.Header.Get("x-request-id"),
			"proto":     r.Proto,
		})
	})
	srv := httptest.NewUnstartedServer(h)
	if o.H2C {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.Conns.Add(1)
		}
	}
	srv.Start()
	s.Server = srv
	return s
}

func (s *Splitter) pick() string {
	s.mu.Lock()
	u := s.rng.Float64() * s.total
	s.mu.Unlock()
	for _, b := range s.backends {
		if u < b.Weight {
			return b.Name
		}
		u -= b.Weight
	}
	return s.backends[len(s.backends)-1].Name
}
