package gwtest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/gatecheck/gatecheck/traffic"
	"github.com/gatecheck/gatecheck/verdict"
)

// ConvergeInARow is how many consecutive expected responses mean a route change has reached
// the data plane (upstream conformance uses 3).
const ConvergeInARow = 3

// HostPort joins the Gateway address and a listener port (IPv6 safe).
func HostPort(addr string, port int) string { return net.JoinHostPort(addr, strconv.Itoa(port)) }

// Driver returns an HTTP driver aimed at url, logging progress to the suite's writer.
func (e *Env) Driver(url string) *traffic.Driver {
	return &traffic.Driver{URL: url, Concurrency: 8, Timeout: 10 * time.Second, Logger: e.Log, ProgressEvery: 10 * time.Second}
}

// VerdictConfig is the share-test configuration the runner asked for (alpha, tolerance)
// with the given request cap.
func (e *Env) VerdictConfig(maxRequests int) verdict.Config {
	return verdict.Config{Alpha: e.Config.Alpha, Tolerance: e.Config.TolerancePts / 100, MaxRequests: maxRequests}
}

// ConvergeOn sends requests until ConvergeInARow in a row are 2xx from one of the backends
// named (any identified backend when none are), so that sampling starts on the new route.
func ConvergeOn(ctx context.Context, d *traffic.Driver, backends ...string) (time.Duration, error) {
	took, err := d.Converge(ctx, ConvergeInARow, ConvergeTimeout, func(r traffic.Result) bool {
		return r.OK() && (len(backends) == 0 || slices.Contains(backends, r.Backend))
	})
	if err != nil {
		return took, fmt.Errorf("route never served as declared (want %d 2xx in a row from %v): %w", ConvergeInARow, backends, err)
	}
	return took, nil
}

// Positive lists the backends with a positive weight.
func Positive(bs []verdict.Backend) []string {
	var out []string
	for _, b := range bs {
		if b.Weight > 0 {
			out = append(out, b.Name)
		}
	}
	return out
}
