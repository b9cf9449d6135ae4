//go:build conformance

package conformance

import "testing"

// TestConformance is the upstream suite with the upstream flags; see Test.
func TestConformance(t *testing.T) { Test(t) }
