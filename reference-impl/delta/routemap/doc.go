// Package routemap provides Map, a map that is never modified once published and is changed
// by copying only the part a change touches: the route tables of package delta and the
// proxy's lookup tables, which readers use without locks while an update makes the next one.
package routemap
