package probe

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/traffic"
)

// MirrorCheck and MirrorReport, re-exported: send requests to a mirrored route and match
// them by request id to the mirror backends' records.
type (
	MirrorCheck  = traffic.MirrorCheck
	MirrorReport = traffic.MirrorReport
)

// ParseFraction reads a declared mirror share: "1", "0.25", "1/4" or "25%".
func ParseFraction(s string) (float64, error) {
	s = strings.TrimSpace(s)
	var f float64
	var err error
	switch {
	case strings.HasSuffix(s, "%"):
		f, err = strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		f /= 100
	case strings.Contains(s, "/"):
		num, den, _ := strings.Cut(s, "/")
		var a, b float64
		a, err = strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err == nil {
			b, err = strconv.ParseFloat(strings.TrimSpace(den), 64)
		}
		if err == nil && b <= 0 {
			return 0, fmt.Errorf("%q: denominator must be positive", s)
		}
		f = a / b
	default:
		f, err = strconv.ParseFloat(s, 64)
	}
	if err != nil {
		return 0, fmt.Errorf("%q: want 1, 0.25, 1/4 or 25%%", s)
	}
	if !(f >= 0 && f <= 1) {
		return 0, fmt.Errorf("%q: want a share between 0 and 1 (0%% to 100%%)", s)
	}
	return f, nil
}

// WriteMirrorText renders a mirror report for a person.
func WriteMirrorText(w io.Writer, url string, mirrors []string, r MirrorReport) error {
	var b strings.Builder
	v := r.Verdict
	fmt.Fprintf(&b, "probe mirror %s -> records at %s\n", url, strings.Join(mirrors, ", "))
	fmt.Fprintf(&b, "verdict: %s: %s\n", strings.ToUpper(string(v.Decision)), v.Message)
	fmt.Fprintf(&b, "requests: %d sent, %d answered, %d seen by the mirror (%d duplicate copies); waited %s for copies\n",
		r.Traffic.Sent, r.Traffic.Completed-r.Traffic.TransportErrors, r.Seen, r.Duplicates, r.WaitedFor.Round(time.Millisecond))
	if f := r.Traffic.Failures(); f > 0 {
		fmt.Fprintf(&b, "failed primary requests: %d (%s)\n", f, r.Traffic.FailureText())
	}
	if r.LeakedResponses > 0 {
		fmt.Fprintf(&b, "mirror responses returned to the client: %d\n", r.LeakedResponses)
	}
	for _, br := range v.Backends {
		fmt.Fprintf(&b, "  %-13s declared %6.2f%%  observed %6.2f%%  %.4g%% CI %.2f–%.2f%%  (%d of n=%d)\n", br.Name,
			100*br.Declared, 100*br.Observed, 100*br.Interval.Level, 100*br.Interval.Lo, 100*br.Interval.Hi, br.Count, v.N)
	}
	writeDesign(&b, v)
	l := r.Traffic.Latency
	fmt.Fprintf(&b, "primary latency: p50 %.2fms p99 %.2fms max %.2fms\n", l.P50, l.P99, l.Max)
	for _, wmsg := range v.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wmsg)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
