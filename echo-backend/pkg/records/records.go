// Package records keeps every request a backend received in a bounded ring and serves it on an
// admin API, so suites (mirroring above all) can verify delivery by request id instead of
// scraping logs.
package records

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
)

// DefaultCapacity is how many records a Store keeps unless told otherwise. At ~1 KiB a record
// it bounds memory near 10 MiB; past it the oldest record is overwritten and counted as evicted.
const DefaultCapacity = 10000

// maxPaths bounds the per-path counters in Stats; requests to further distinct paths are
// counted under OtherPaths so that unique-path traffic cannot grow memory without bound.
const maxPaths = 1000

// OtherPaths is the Stats.ByPath key that counts requests to paths beyond the first 1000.
const OtherPaths = "(other)"

// Kinds of record.
const (
	KindHTTP = "http"
	KindGRPC = "grpc"
	KindTCP  = "tcp"
)

// Record is one received request (or, for TCP, one accepted connection).
type Record struct {
	// Seq numbers records from 1 in arrival order; use it with ?since=.
	Seq uint64 `json:"seq"`
	// ID is the request id: the x-request-id header (metadata for gRPC) or the request-id
	// query parameter; empty when the client sent none.
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Method is the HTTP method; for gRPC "POST"; for TCP empty.
	Method string `json:"method,omitempty"`
	// Path is the URL path without query (gRPC: the full method, e.g. /pkg.Svc/Method).
	Path string `json:"path"`
	// URI is the request target as received, query included.
	URI     string              `json:"uri,omitempty"`
	Host    string              `json:"host,omitempty"`
	Proto   string              `json:"proto,omitempty"`
	Headers map[string][]string `json:"headers,omitempty"`
	// Time is when the backend received the request (before any ?delay=).
	Time         time.Time `json:"time"`
	ConnectionID string    `json:"connectionId"`
	RemoteAddr   string    `json:"remoteAddr,omitempty"`
}

// Stats summarises everything received since start, evicted records included.
type Stats struct {
	Identity identity.Identity `json:"identity"`
	Capacity int               `json:"capacity"`
	// Total is every record ever added; Kept is how many the ring still holds; Evicted = Total-Kept.
	Total   uint64 `json:"total"`
	Kept    int    `json:"kept"`
	Evicted uint64 `json:"evicted"`
	// ByPath counts requests per Path (query stripped) over Total, not only kept records.
	ByPath map[string]uint64 `json:"byPath"`
	ByKind map[string]uint64 `json:"byKind"`
}

// Page is the /records answer.
type Page struct {
	Identity identity.Identity `json:"identity"`
	Capacity int               `json:"capacity"`
	Total    uint64            `json:"total"`
	Evicted  uint64            `json:"evicted"`
	// Complete is false when records the query asked for may have been evicted: for ?since=S
	// when a record with Seq > S was overwritten, for other queries when anything was evicted.
	Complete bool `json:"complete"`
	// Next is the Seq to pass as ?since= to continue after this page.
	Next    uint64   `json:"next"`
	Records []Record `json:"records"`
}

// Store is a fixed-size ring of records, safe for concurrent use.
type Store struct {
	id       identity.Identity
	mu       sync.Mutex
	ring     []Record
	total    uint64
	byPath   map[string]uint64
	byKind   map[string]uint64
	capacity int
}

// NewStore returns a Store keeping the last capacity records (DefaultCapacity if capacity <= 0).
func NewStore(id identity.Identity, capacity int) *Store {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Store{
		id:       id,
		ring:     make([]Record, capacity),
		byPath:   make(map[string]uint64),
		byKind:   make(map[string]uint64),
		capacity: capacity,
	}
}

// Add stores r, overwriting the oldest record when full, and returns its Seq.
// A nil Store ignores the call, so servers can run without records.
func (s *Store) Add(r Record) uint64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	s.total++
	r.Seq = s.total
	s.ring[(r.Seq-1)%uint64(s.capacity)] = r
	if _, ok := s.byPath[r.Path]; ok || len(s.byPath) < maxPaths {
		s.byPath[r.Path]++
	} else {
		s.byPath[OtherPaths]++
	}
	s.byKind[r.Kind]++
	s.mu.Unlock()
	return r.Seq
}

// kept returns how many records the ring holds and the Seq of the oldest one. Callers hold mu.
func (s *Store) kept() (int, uint64) {
	if s.total < uint64(s.capacity) {
		return int(s.total), 1
	}
	return s.capacity, s.total - uint64(s.capacity) + 1
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept, _ := s.kept()
	st := Stats{
		Identity: s.id,
		Capacity: s.capacity,
		Total:    s.total,
		Kept:     kept,
		Evicted:  s.total - uint64(kept),
		ByPath:   make(map[string]uint64, len(s.byPath)),
		ByKind:   make(map[string]uint64, len(s.byKind)),
	}
	for k, v := range s.byPath {
		st.ByPath[k] = v
	}
	for k, v := range s.byKind {
		st.ByKind[k] = v
	}
	return st
}

// Query selects records. The zero Query selects every kept record.
type Query struct {
	// ID keeps only records with this request id, when set.
	ID string
	// Since keeps only records with Seq > Since.
	Since uint64
	// Limit caps the number of records returned (oldest first); 0 means no cap.
	Limit int
}

// Find returns the kept records matching q, oldest first.
func (s *Store) Find(q Query) Page {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept, oldest := s.kept()
	p := Page{
		Identity: s.id,
		Capacity: s.capacity,
		Total:    s.total,
		Evicted:  s.total - uint64(kept),
		Next:     q.Since,
		Records:  []Record{},
	}
	if q.ID != "" {
		p.Complete = p.Evicted == 0
	} else {
		p.Complete = q.Since+1 >= oldest
	}
	start := max(oldest, q.Since+1)
	for seq := start; seq <= s.total; seq++ {
		r := s.ring[(seq-1)%uint64(s.capacity)]
		p.Next = seq
		if q.ID != "" && r.ID != q.ID {
			continue
		}
		p.Records = append(p.Records, r)
		if q.Limit > 0 && len(p.Records) >= q.Limit {
			break
		}
	}
	return p
}

// Handler serves the admin API:
//
//	GET /records              every kept record, oldest first
//	GET /records?id=ID        kept records whose request id is ID
//	GET /records?since=SEQ    kept records with seq > SEQ (add &limit=N to page)
//	GET /stats                counters, per path and per kind
//	GET /healthz              200 "ok"
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /records", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, s.Find(q))
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}

func parseQuery(r *http.Request) (Query, error) {
	v := r.URL.Query()
	q := Query{ID: v.Get("id")}
	if s := v.Get("since"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, fmt.Errorf("query parameter since=%q: want a record seq (unsigned integer): %w", s, err)
		}
		q.Since = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("query parameter limit=%q: want a non-negative integer", s)
		}
		q.Limit = n
	}
	return q, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
