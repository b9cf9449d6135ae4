// Package delta is the per-route delivery protocol between the reference controller and its
// proxies (ir/delivery.go), the way delta xDS works: both ends hold a Gateway's configuration
// keyed by route (Table); the controller turns what changed between two tables into an
// ir.Update of upserts and deletes (Diff), the proxy applies it to its table (Apply), and a
// (re)connecting proxy gets the full state (Full). This is the one place where configuration
// changes are worked out; translation produces whole snapshots, the proxy compiles the routes
// an update names.
package delta
