package records_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
)

func fill(s *records.Store, n int) {
	for i := 1; i <= n; i++ {
		s.Add(records.Record{ID: fmt.Sprintf("id-%d", i%3), Kind: records.KindHTTP, Path: fmt.Sprintf("/p%d", i%2)})
	}
}

func seqs(p records.Page) []uint64 {
	out := []uint64{}
	for _, r := range p.Records {
		out = append(out, r.Seq)
	}
	return out
}

func TestFind(t *testing.T) {
	t.Parallel()
	s := records.NewStore(identity.Identity{Pod: "p"}, 4)
	fill(s, 6) // seqs 1..6; the ring keeps 3..6
	tests := []struct {
		name         string
		q            records.Query
		wantSeqs     []uint64
		wantComplete bool
		wantNext     uint64
	}{
		{name: "all kept", q: records.Query{}, wantSeqs: []uint64{3, 4, 5, 6}, wantComplete: false, wantNext: 6},
		{name: "since inside ring", q: records.Query{Since: 3}, wantSeqs: []uint64{4, 5, 6}, wantComplete: true, wantNext: 6},
		{name: "since just before oldest", q: records.Query{Since: 2}, wantSeqs: []uint64{3, 4, 5, 6}, wantComplete: true, wantNext: 6},
		{name: "since evicted", q: records.Query{Since: 1}, wantSeqs: []uint64{3, 4, 5, 6}, wantComplete: false, wantNext: 6},
		{name: "since newest", q: records.Query{Since: 6}, wantSeqs: []uint64{}, wantComplete: true, wantNext: 6},
		{name: "limit pages", q: records.Query{Since: 3, Limit: 2}, wantSeqs: []uint64{4, 5}, wantComplete: true, wantNext: 5},
		{name: "by id", q: records.Query{ID: "id-0"}, wantSeqs: []uint64{3, 6}, wantComplete: false, wantNext: 6},
		{name: "unknown id", q: records.Query{ID: "nope"}, wantSeqs: []uint64{}, wantComplete: false, wantNext: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := s.Find(tc.q)
			if d := cmp.Diff(tc.wantSeqs, seqs(p)); d != "" {
				t.Errorf("seqs (-want +got):\n%s", d)
			}
			if p.Complete != tc.wantComplete || p.Next != tc.wantNext || p.Evicted != 2 || p.Total != 6 {
				t.Errorf("page: got complete %v next %d evicted %d total %d; want %v %d 2 6", p.Complete, p.Next, p.Evicted, p.Total, tc.wantComplete, tc.wantNext)
			}
		})
	}
}

func TestStatsCountsEvictedAndBoundsPaths(t *testing.T) {
	t.Parallel()
	s := records.NewStore(identity.Identity{}, 10)
	for i := range 1005 {
		s.Add(records.Record{Kind: records.KindHTTP, Path: fmt.Sprintf("/u%d", i)})
	}
	s.Add(records.Record{Kind: records.KindGRPC, Path: "/u0"})
	st := s.Stats()
	if st.Total != 1006 || st.Kept != 10 || st.Evicted != 996 || st.Capacity != 10 {
		t.Errorf("stats: got total %d kept %d evicted %d capacity %d; want 1006 10 996 10", st.Total, st.Kept, st.Evicted, st.Capacity)
	}
	if st.ByPath["/u0"] != 2 || st.ByPath[records.OtherPaths] != 5 || len(st.ByPath) != 1001 {
		t.Errorf("byPath: got /u0=%d other=%d distinct=%d; want 2, 5, 1001", st.ByPath["/u0"], st.ByPath[records.OtherPaths], len(st.ByPath))
	}
	if st.ByKind[records.KindHTTP] != 1005 || st.ByKind[records.KindGRPC] != 1 {
		t.Errorf("byKind: got %v; want http=1005 grpc=1", st.ByKind)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	s := records.NewStore(identity.Identity{Pod: "pod-r"}, 100)
	fill(s, 5)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantN    int
	}{
		{name: "by id", path: "/records?id=id-1", wantCode: 200, wantN: 2},
		{name: "since", path: "/records?since=2", wantCode: 200, wantN: 3},
		{name: "since and limit", path: "/records?since=2&limit=1", wantCode: 200, wantN: 1},
		{name: "bad since", path: "/records?since=yesterday", wantCode: 400},
		{name: "bad limit", path: "/records?limit=-1", wantCode: 400},
		{name: "stats", path: "/stats", wantCode: 200},
		{name: "healthz", path: "/healthz", wantCode: 200},
		{name: "unknown", path: "/nope", wantCode: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("GET %s: got %d; want %d", tc.path, resp.StatusCode, tc.wantCode)
			}
			if tc.wantN == 0 {
				return
			}
			var p records.Page
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if len(p.Records) != tc.wantN || p.Identity.Pod != "pod-r" {
				t.Errorf("GET %s: got %d records, pod %q; want %d, pod-r", tc.path, len(p.Records), p.Identity.Pod, tc.wantN)
			}
		})
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	s := records.NewStore(identity.Identity{Pod: "pod-f"}, 3)
	fill(s, 5)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ctx := t.Context()
	p, err := records.Fetch(ctx, nil, srv.URL, records.Query{Since: 3, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]uint64{4}, seqs(p)); d != "" || !p.Complete || p.Next != 4 {
		t.Errorf("Fetch since=3 limit=1: seqs diff %s, complete %v, next %d; want [4], true, 4", d, p.Complete, p.Next)
	}
	st, err := records.FetchStats(ctx, nil, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 5 || st.Evicted != 2 || st.Identity.Pod != "pod-f" {
		t.Errorf("FetchStats: got total %d evicted %d pod %q; want 5, 2, pod-f", st.Total, st.Evicted, st.Identity.Pod)
	}
	if _, err := records.Fetch(ctx, nil, srv.URL+"/nope", records.Query{}); err == nil {
		t.Errorf("Fetch from a wrong base: got nil error; want one")
	}
}
