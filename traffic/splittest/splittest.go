// Package splittest serves a loopback weighted splitter, standing in for a gateway in tests:
// each request is answered by a backend chosen by weight (at random per request by default;
// per connection, in runs, or by deterministic smooth weighted round robin on request), as
// JSON {"backend": ...}.
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
	mode     Mode
	runLen   int
	connPick map[string]string
	runLeft  int
	runPick  string
	current  []float64 // smooth weighted round robin state
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
	// Mode chooses how a backend is picked: Random (default), PerConnection (at random by
	// weight when a connection opens, then every request on it), Runs (at random by weight
	// for RunLength consecutive requests at a time) or RoundRobin (smooth weighted round
	// robin, as nginx and Envoy do: exactly the weights over every sum-of-weights requests).
	Mode Mode
	// RunLength is the length of a run in Runs mode; default 20.
	RunLength int
}

// Mode is how a Splitter picks a backend.
type Mode int

const (
	Random Mode = iota
	PerConnection
	Runs
	RoundRobin
)

// New starts a splitter on 127.0.0.1:0; it is closed by Close.
func New(backends []Backend, o Options) *Splitter {
	s := &Splitter{rng: rand.New(rand.NewPCG(o.Seed, o.Seed+1)), backends: backends, status: o.Status, peers: map[string]int{},
		mode: o.Mode, runLen: o.RunLength, connPick: map[string]string{}, current: make([]float64, len(backends))}
	if s.runLen <= 0 {
		s.runLen = 20
	}
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
			"backend":   s.choose(r.RemoteAddr),
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

// choose picks the backend for a request from the client connection at remote.
func (s *Splitter) choose(remote string) string {
	switch s.mode {
	case PerConnection:
		s.mu.Lock()
		b, ok := s.connPick[remote]
		s.mu.Unlock()
		if !ok {
			b = s.pick()
			s.mu.Lock()
			s.connPick[remote] = b
			s.mu.Unlock()
		}
		return b
	case Runs:
		s.mu.Lock()
		if s.runLeft == 0 {
			s.mu.Unlock()
			b := s.pick()
			s.mu.Lock()
			s.runPick, s.runLeft = b, s.runLen
		}
		s.runLeft--
		b := s.runPick
		s.mu.Unlock()
		return b
	case RoundRobin:
		// Smooth weighted round robin: add each weight to its current value, pick the
		// largest, take the total off it.
		s.mu.Lock()
		defer s.mu.Unlock()
		best := 0
		for i, b := range s.backends {
			s.current[i] += b.Weight
			if s.current[i] > s.current[best] {
				best = i
			}
		}
		s.current[best] -= s.total
		return s.backends[best].Name
	}
	return s.pick()
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
