// Package verdict decides whether observed traffic shares match declared weights, says
// exactly what it tested, with exact false-failure and power figures, and records the
// evidence as JSON.
//
// # What is tested
//
// For each tested share p (with two positive backends only the smaller one, since one count
// fixes the other; otherwise every positive share) the verdict separates two hypotheses:
//
//   - pass: no evidence that the share differs from p;
//   - fail: evidence of a skew, designed to be caught at p+up and p-down with probability
//     at least Power (0.99), where up = min(Delta, p) and down = min(Delta, 0.75p), Delta 3
//     points by default. Below Delta the skews are relative: a 3% canary is tested against 6%
//     and 0.75%, a 1% one against 2% and 0.25%, so a backend that gets nothing or double its
//     share fails with probability >= 0.99 whatever its share down to 1%.
//
// A correct split (true share exactly p) fails with probability at most Alpha (1e-4). Between
// p and the skews is an indifference zone where the test promises nothing; the operating
// characteristic (Verdict.OC: the exact probability of failing as a function of the true
// share) shows what it does there. Messages state this and nothing more: a pass never claims
// a tolerance the test did not establish.
//
// # Method
//
// Units (requests, connections, RPCs) are fed one at a time, in send order, to a Sequential
// test. Any unit from a zero-weight or undeclared backend fails at once (a correct splitter
// never sends one). Each tested share has two one-sided truncated SPRTs, "too high" against
// p+up and "too low" against p-down. A side follows S(n) = k - n*line (line: the SPRT's drift
// line), fails once S >= a, accepts once S <= -b, and at its cap fails iff S > t. a and b
// start as Wald's boundaries for (alpha_side, beta/2); the exact error rates are computed by
// dynamic programming over k, one unit at a time, and t is set from the exact distribution of
// k at the cap so that the side's false-failure probability is <= its share of Alpha. The cap
// is not given: it is the smallest (to ~2%) at which the exact power reaches Power, so the
// test draws as many units as its power needs and reports the most it may use (NeededN).
// Config.MaxRequests is only a ceiling: below NeededN a run can still fail on evidence but
// ends Inconclusive ("needs N requests") instead of passing. The verdict fails if any side
// fails; by the union bound its false-failure probability is at most the sum of the sides'
// exact values plus the dependence tests' budget (1e-6), which is <= Alpha. With two positive
// backends the operating characteristic is computed exactly for the whole rule as run (both
// sides on one count, a side that accepted staying accepted); with more it is each backend's
// part, which the verdict fails at least as often.
//
// The share test assumes independent units. Two exact Wald-Wolfowitz runs tests check it for
// each tested backend: in send order (responses served in runs) and in connection order (each
// connection's units in turn: a split per connection behind keep-alive). Given the counts,
// every order is equally likely under independence, so the lower tail of the number of runs
// is exact. Clustering beyond the level fails the verdict with its own finding ("split per
// connection, not per request: ...") instead of a weight failure with no diagnosis; a
// deterministic weighted round robin (more alternation, not less) passes.
//
// # Numbers (defaults: Alpha 1e-4, Power 0.99, Delta 3 pts), exact (TestDesignTable)
//
//	split       alpha     power at the skews    E[n] correct  max n
//	90/10       9.94e-5   0.9906 (7%) 0.9907 (13%)    1,535    5,217
//	80/20       9.95e-5   0.9903 (17%) 0.9903 (23%)   2,707    8,823
//	70/30(/0)   9.96e-5   0.9902 (27%) 0.9905 (33%)   3,547   11,503
//	50/50       9.98e-5   0.9904 (47%) 0.9904 (53%)   4,221   13,413
//	99/1        9.73e-5   0.9910 (0.25%) 0.9904 (2%)  1,936    6,276
//	97/3        9.82e-5   0.9904 (0.75%) 0.9901 (6%)    629    2,004
//	50/30/20    9.98e-5   >= 0.9900 each side        >=4,223   14,370
//	mirror 25%  9.98e-5   0.9904 (22%) 0.9901 (28%)   3,169   10,223
//	mirror 1/3  9.99e-5   0.9903 (30.3%) 0.9906 (36.3%) 3,753  12,121
//
// A starved backend (0%) fails with probability 1.000000 in every split (after 303 requests
// at 90/10, 433 at 97/3, 1,313 at 99/1 on average); one at double its share with >= 0.9901.
// Inside the indifference zone at 90/10: a true 9% fails 1.6% of the time, 11% 3.4%, 8% 51%,
// 12% 64%. Simulated (TestCanary9010, seeded): 1 failure in 20,000 correct 90/10 runs, mean
// 1,538 requests (exact 1,535); 87/13 caught in 2,969 of 3,000 (0.990), 93/7 in 2,977 of
// 3,000. A fixed-sample test with the same errors needs 4,225 requests (the sequential mean is
// 0.36 of that). The exact rule is checked against simulation where failures are common
// (TestExactAlphaMatchesSimulation, TestOCRuleMatchesSides), and the runs distribution
// against enumeration (TestRunsLowerTailExact).
//
// Intervals are Clopper-Pearson at level 1-Alpha, computed at the final n; they describe the
// sample and are not adjusted for the sequential stopping, which the decision already is.
// The chi-square goodness-of-fit p-value is reported, not used to decide.
package verdict
