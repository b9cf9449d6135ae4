// Package status is the reference controller's one status writer: it skips writes that would
// change nothing, keeps condition transition times, and retries on conflict.
package status
