// Package probe aims gatecheck's traffic drivers and verdicts at any address; it is the
// public face of traffic and verdict, for the CLI.
package probe
