package routemap

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// TestEditLeavesTheOriginal walks random sets and deletes through chains of edits, flat and
// tree, against plain Go maps: every version must still hold what it held when it was made.
func TestEditLeavesTheOriginal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys int // key space; above FlatMax the maps become trees
	}{
		{name: "flat", keys: FlatMax / 2},
		{name: "tree", keys: 5000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rnd := rand.New(rand.NewPCG(1, uint64(tc.keys)))
			type version struct {
				m    Map[string, int]
				want map[string]int
			}
			// The first version is built in one go, as a table from a snapshot is.
			e := New[string, int](String).Edit()
			want := map[string]int{}
			for i := range tc.keys {
				k := fmt.Sprint("k", i)
				e.Set(k, i)
				want[k] = i
			}
			versions := []version{{e.View(), maps.Clone(want)}}
			for v := 1; v <= 50; v++ {
				e := versions[len(versions)-1].m.Edit()
				for range 1 + rnd.IntN(20) {
					k := fmt.Sprint("k", rnd.IntN(tc.keys+10))
					if rnd.IntN(3) == 0 {
						e.Delete(k)
						delete(want, k)
					} else {
						e.Set(k, v)
						want[k] = v
					}
				}
				versions = append(versions, version{e.View(), maps.Clone(want)})
			}
			if tc.keys > FlatMax && versions[len(versions)-1].m.flat != nil {
				t.Errorf("%d keys after edits: still flat; want a tree", tc.keys)
			}
			for i, v := range versions {
				if got := maps.Collect(v.m.All()); !maps.Equal(got, v.want) {
					t.Fatalf("version %d changed after later edits: %d keys, %d expected, or other values", i, len(got), len(v.want))
				}
				if v.m.Len() != len(v.want) {
					t.Errorf("version %d: Len %d; want %d", i, v.m.Len(), len(v.want))
				}
				for k, x := range v.want {
					if y, ok := v.m.Get(k); !ok || y != x {
						t.Fatalf("version %d: Get(%s) = %d, %v; want %d, true", i, k, y, ok, x)
					}
				}
				if _, ok := v.m.Get("absent"); ok {
					t.Errorf("version %d: Get(absent) found a value", i)
				}
			}
		})
	}
}

// TestEditCopiesLittle checks the point of the tree: one change to a 5,000-key map copies a
// shard, not the map. (Not parallel: AllocsPerRun.)
func TestEditCopiesLittle(t *testing.T) {
	e := New[string, int](String).Edit()
	for i := range 5000 {
		e.Set(fmt.Sprint("k", i), i)
	}
	m := e.View().Edit().View() // the first edit makes the tree
	if m.flat != nil {
		t.Fatalf("5000 keys after an edit: flat; want a tree")
	}
	allocs := testing.AllocsPerRun(100, func() {
		e := m.Edit()
		e.Set("k17", -1)
	})
	// The edit, its root, one branch, one shard (a small Go map: a few allocations).
	if allocs > 8 {
		t.Errorf("one Set on a 5000-key tree: %.0f allocations; want <= 8", allocs)
	}
}
