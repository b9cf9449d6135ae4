package routemap

import (
	"hash/maphash"
	"iter"
	"maps"
)

// A Map holds its keys in one Go map (flat) while it is small or was built in one go, as
// the controller's tables are, and otherwise spreads them over fan*fan small Go maps (shards)
// under a two-level tree of pointer arrays. Changing one key of a tree copies the root (fan
// pointers), one branch (fan pointers) and the key's shard (n/fan² keys: about one for 5,000
// routes): about 1 KB however large the map, against all n keys for a cloned Go map. The
// first edit of a large flat map makes the tree (once, about the cost of one clone).
const (
	fan     = 64
	nShards = fan * fan
)

// FlatMax is the size up to which an edit clones a flat map instead of making the tree. Tests
// of other packages lower it so that their small maps are trees; it may only be changed
// before any Map is edited (in a test package's init).
var FlatMax = 256

// seed hashes keys to shards; every Map of the process uses it, so that an edit of
// one shares the shards of the other.
var seed = maphash.MakeSeed()

// String hashes a string key.
func String(s string) uint64 { return maphash.String(seed, s) }

// Map is a map that is never modified once published (readers of the tables in force
// use it without locks): a change is made on an edit, which copies only the shards it
// changes. The zero value is an empty map that cannot be edited; New sets the hash.
type Map[K comparable, V any] struct {
	flat map[K]V             // when not nil, every key is here and root is nil
	root *[fan]*[fan]map[K]V // a nil root, branch or shard is empty
	hash func(K) uint64
}

// New returns an empty map whose keys hash with hash.
func New[K comparable, V any](hash func(K) uint64) Map[K, V] {
	return Map[K, V]{hash: hash}
}

// place is k's branch and shard.
func (m Map[K, V]) place(k K) (int, int) {
	h := m.hash(k) % nShards
	return int(h / fan), int(h % fan)
}

// Get returns the value of k, and whether k is in m.
func (m Map[K, V]) Get(k K) (V, bool) {
	if m.flat != nil {
		v, ok := m.flat[k]
		return v, ok
	}
	var zero V
	if m.root == nil {
		return zero, false
	}
	b, i := m.place(k)
	br := m.root[b]
	if br == nil {
		return zero, false
	}
	v, ok := br[i][k]
	return v, ok
}

// Len counts the keys (tests; not on the request path).
func (m Map[K, V]) Len() int {
	if m.flat != nil {
		return len(m.flat)
	}
	n := 0
	for range m.All() {
		n++
	}
	return n
}

// All yields every key and value, in no particular order.
func (m Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if m.flat != nil {
			for k, v := range m.flat {
				if !yield(k, v) {
					return
				}
			}
			return
		}
		if m.root == nil {
			return
		}
		for _, br := range m.root {
			if br == nil {
				continue
			}
			for _, s := range br {
				for k, v := range s {
					if !yield(k, v) {
						return
					}
				}
			}
		}
	}
}

// Edit is a copy of a Map being changed: the shards it changes are copied on their
// first change, the others stay shared with the map it was made from, which is left as it was.
type Edit[K comparable, V any] struct {
	m Map[K, V]
	// ownBranch and ownShard mark what this edit copied and may change in place (a flat
	// map is always its own).
	ownBranch [fan]bool
	ownShard  [nShards / 64]uint64
}

// Edit starts a changed copy of m.
func (m Map[K, V]) Edit() *Edit[K, V] {
	switch {
	case m.root == nil && len(m.flat) <= FlatMax:
		f := maps.Clone(m.flat)
		if f == nil {
			f = map[K]V{}
		}
		return &Edit[K, V]{m: Map[K, V]{flat: f, hash: m.hash}}
	case m.flat != nil:
		e := &Edit[K, V]{m: Map[K, V]{root: new([fan]*[fan]map[K]V), hash: m.hash}}
		for k, v := range m.flat {
			e.Set(k, v)
		}
		return e
	}
	e := &Edit[K, V]{m: Map[K, V]{root: new([fan]*[fan]map[K]V), hash: m.hash}}
	*e.m.root = *m.root
	return e
}

// Get is Map.Get on the map as edited so far.
func (e *Edit[K, V]) Get(k K) (V, bool) { return e.m.Get(k) }

// shard returns k's shard, copied first if this edit has not yet.
func (e *Edit[K, V]) shard(k K) map[K]V {
	if e.m.flat != nil {
		return e.m.flat
	}
	b, i := e.m.place(k)
	if !e.ownBranch[b] {
		br := new([fan]map[K]V)
		if old := e.m.root[b]; old != nil {
			*br = *old
		}
		e.m.root[b], e.ownBranch[b] = br, true
	}
	br := e.m.root[b]
	if j := b*fan + i; e.ownShard[j/64]&(1<<(j%64)) == 0 {
		s := maps.Clone(br[i])
		if s == nil {
			s = map[K]V{}
		}
		br[i] = s
		e.ownShard[j/64] |= 1 << (j % 64)
	}
	return br[i]
}

// Set makes v the value of k.
func (e *Edit[K, V]) Set(k K, v V) { e.shard(k)[k] = v }

// Delete removes k.
func (e *Edit[K, V]) Delete(k K) {
	if _, ok := e.m.Get(k); ok {
		delete(e.shard(k), k)
	}
}

// View is the edited map as it stands. It may only be published (read without locks) once
// the edit is no longer changed.
func (e *Edit[K, V]) View() Map[K, V] { return e.m }
