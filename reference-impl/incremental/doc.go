// Package incremental keeps route translations between reconciles so that a change to a few
// routes costs those routes, not all of them; built on translate's pure pieces, whose output it
// reproduces exactly.
package incremental
