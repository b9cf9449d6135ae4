// Package timeline merges the lifecycle events that a Pod's containers wrote and checks ordering
// predicates on them (StartsBefore, ExitsBefore, RunTogether, HasRestarted), without a cluster.
package timeline
