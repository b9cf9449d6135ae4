// Package verdict decides whether observed traffic shares match declared weights, with a
// stated false-failure probability and power, and records the evidence as JSON.
//
// # Method
//
// Responses are fed one at a time, in arrival order, to a Sequential test. Any response from
// a zero-weight or undeclared backend fails at once (a correct splitter never sends one, so
// this costs no false failures). Each positive share p0 is watched by two one-sided tests,
// "too high" and "too low"; with exactly two positive backends one count fixes the other, so
// only the smaller share is tested. A one-sided test follows the walk S(n) = k - n(p0+tol)
// (k = hits so far, tol = Tolerance) and
//
//   - fails as soon as S >= a, which implies the observed share is already past p0+tol;
//   - accepts as soon as S <= -b;
//   - at the cap (MaxRequests) fails iff S > t.
//
// a and b start as Wald's SPRT boundaries for p0 against p1 = p0+Delta (at 90/10 the SPRT's own drift
// lines are 11.44% and 8.42%, within 0.1 pt of p0+-Delta/2, so with Delta = 2*tol this is
// nearly the SPRT; at a 1% share the gap is 0.3 pt). The test's exact error rates are then computed by dynamic programming over k, one
// request at a time (the continuation region is a band a+b counts wide, so this is cheap),
// and the design is calibrated on those exact numbers: t (and if needed a) is raised until
// the false-failure probability at p0 is <= the side's share of Alpha, and b is widened until
// the power at p1 reaches Power or stops improving. The verdict fails if any side fails, so
// by the union bound the false-failure probability is <= the sum of the sides' exact values,
// which is <= Alpha. Sampling stops when every side has accepted, a side fails, or the cap.
//
// # Numbers (defaults: Alpha 1e-4, Power 0.99, Tolerance 1.5 pts, Delta 3 pts, cap 5,000)
//
// 90/10, exact: false-failure 9.83e-5 (4.84e-5 "v3 too high" + 4.99e-5 "too low"); power
// 0.9906 against 87/13 and 0.9914 against 93/7; expected requests for a correct split 1,195
// and 810 per side. Simulated (TestCanary9010, seeded, one request at a time): 2 failures in
// 20,000 correct runs (expected ~2 at 1e-4), mean 1,472 requests; 87/13 caught in 2,974 of
// 3,000 runs (0.991), mean 2,208 requests; 93/7 in 2,971 of 3,000 (0.990). A fixed-sample
// test with the same errors needs 4,229 requests (the sequential mean is 0.35 of that). The
// dynamic program is checked against simulation at alpha 0.01 (exact 0.0088, simulated
// 89/10,000). For comparison the upstream check (500 requests, +-5 pts) passes a 65/35 split
// about half the time it is tried. A pass at n requests only rules out zero-weight leaks
// above about 4.6/n (99% power).
//
// A 3-pt skew is harder to see near 50/50 (the variance is larger). Exact figures for the
// default design (TestDesignTable): 99/1 alpha 1.3e-5, power 0.993, ~315 requests for a
// correct split; 70/30/0 alpha 9.7e-5, power 0.728; 50/50 alpha 9.4e-5, power 0.614, ~2,430
// requests; 50/30/20 alpha 9.6e-5, power 0.522. At 50/50 a cap of 12,000 gives power 0.983.
// When power falls short the verdict carries a warning, and Power always records the exact
// figure for the cap used.
//
// Intervals are Clopper-Pearson at level 1-Alpha, computed at the final n; they describe the
// sample and are not adjusted for the sequential stopping, which the decision already is.
// The chi-square goodness-of-fit p-value is reported, not used to decide.
package verdict
