// Package traffic drives HTTP requests at a gateway at a controlled rate and concurrency,
// tags each with a request id, reads which backend answered, and feeds verdicts.
package traffic
