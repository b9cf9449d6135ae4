// Package proxy is the reference data plane: it serves every listener of one Gateway snapshot
// (HTTP/1.1, h2c, HTTPS with SNI, gRPC, TCP) and swaps snapshots atomically.
package proxy
