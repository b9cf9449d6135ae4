// Package probe aims gatecheck's traffic drivers and verdicts at any address; it is the
// public face of suites/internal/traffic and suites/internal/verdict, for the CLI.
package probe
