package traffic

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/records"
	"github.com/gatecheck/gatecheck/verdict"
)

// RecordsClient reads an echo backend's records admin API (/stats, /records?since=).
type RecordsClient struct {
	// AdminURL is the admin API's base, e.g. http://127.0.0.1:9090.
	AdminURL string
	// Client defaults to a client with a 10s timeout.
	Client *http.Client
}

func (c *RecordsClient) get(ctx context.Context, path string, into any) error {
	hc := c.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	u := strings.TrimSuffix(c.AdminURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("records admin %s: %w", u, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("records admin %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("records admin %s: read body: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("records admin %s: status %d: %.200s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("records admin %s: decode: %w", u, err)
	}
	return nil
}

// Last returns the sequence number of the newest record (records after it are new).
func (c *RecordsClient) Last(ctx context.Context) (uint64, error) {
	var st records.Stats
	if err := c.get(ctx, "/stats", &st); err != nil {
		return 0, err
	}
	return st.Total, nil
}

// Since returns up to limit records with seq > since, oldest first.
func (c *RecordsClient) Since(ctx context.Context, since uint64, limit int) (records.Page, error) {
	var p records.Page
	q := url.Values{"since": {strconv.FormatUint(since, 10)}, "limit": {strconv.Itoa(limit)}}
	err := c.get(ctx, "/records?"+q.Encode(), &p)
	return p, err
}

// MirrorCheck sends requests to a route with a request mirror and matches them, by request
// id, to the records of the mirror backend(s).
type MirrorCheck struct {
	// Driver sends to the primary route.
	Driver *Driver
	// Mirrors are the records admin URLs of every mirror backend Pod.
	Mirrors []string
	// Requests is how many requests to send; default 1000. A partial mirror sends at least
	// what its share test needs to pass with the stated power (verdict.MirrorRequests: about
	// 10,000-12,000 for 25% or 1/3), so that a correct mirror is never left undecided.
	Requests int
	// Fraction is the declared mirrored share: 1 for a plain mirror, percent/100 otherwise.
	Fraction float64
	Config   verdict.Config
	// Settle bounds the wait for mirrored copies after the last response; default 10s. The
	// wait ends earlier once every request was seen, or (fraction < 1) after Quiet with no
	// new record.
	Settle time.Duration
	Quiet  time.Duration
	// MirrorIdentity, when set, is the mirror backend's identity: a client response from it
	// means a mirror's response reached the client.
	MirrorIdentity string
	// MaxFailures is how many failed primary requests are tolerated.
	MaxFailures int
}

// MirrorReport is what a mirror check found.
type MirrorReport struct {
	Verdict  verdict.Verdict `json:"verdict"`
	Traffic  Summary         `json:"traffic"`
	Requests int             `json:"requests"`
	// Seen is how many of the requests reached a mirror; Duplicates how many copies beyond
	// the first arrived.
	Seen       int `json:"seen"`
	Duplicates int `json:"duplicates"`
	// LeakedResponses counts client responses that came from the mirror backend.
	LeakedResponses int           `json:"leakedResponses"`
	WaitedFor       time.Duration `json:"-"`
	// WaitedSeconds is WaitedFor for JSON readers.
	WaitedSeconds float64 `json:"waitedSeconds"`
}

// Run performs the check. Its error is for a check that could not run (mirror admin
// unreachable, driver misconfigured); failed verdicts are in the report.
func (m *MirrorCheck) Run(ctx context.Context) (MirrorReport, error) {
	var rep MirrorReport
	if len(m.Mirrors) == 0 {
		return rep, fmt.Errorf("mirror check mirrors: got none; want the records admin URL of each mirror backend Pod")
	}
	n := m.Requests
	if n <= 0 {
		n = 1000
	}
	n, err := verdict.MirrorRequests(m.Fraction, m.Config, n)
	if err != nil {
		return rep, fmt.Errorf("mirror check: %w", err)
	}
	clients := make([]*RecordsClient, len(m.Mirrors))
	cursors := make([]uint64, len(m.Mirrors))
	for i, u := range m.Mirrors {
		clients[i] = &RecordsClient{AdminURL: u}
		last, err := clients[i].Last(ctx)
		if err != nil {
			return rep, fmt.Errorf("mirror check: %w", err)
		}
		cursors[i] = last
	}
	ids := make([]string, n+1) // by seq; "" for requests that got no response
	failures := 0
	sum, err := m.Driver.Run(ctx, Limit{Requests: n}, func(r Result) bool {
		if r.Status != 0 {
			ids[r.Seq] = r.RequestID
		}
		if !r.OK() {
			failures++
		}
		if m.MirrorIdentity != "" && r.Backend == m.MirrorIdentity {
			rep.LeakedResponses++
		}
		return false
	})
	rep.Traffic, rep.Requests = sum, n
	if err != nil {
		return rep, fmt.Errorf("mirror check: %w", err)
	}
	want := map[string]bool{}
	for _, id := range ids {
		if id != "" {
			want[id] = true
		}
	}
	seen := map[string]int{}
	settle, quiet := m.Settle, m.Quiet
	if settle <= 0 {
		settle = 10 * time.Second
	}
	if quiet <= 0 {
		quiet = time.Second
	}
	start := time.Now()
	lastNew := start
	lastLog := start
	incomplete := false
	for {
		for i, c := range clients {
			for {
				page, err := c.Since(ctx, cursors[i], 1000)
				if err != nil {
					return rep, fmt.Errorf("mirror check: %w", err)
				}
				if !page.Complete {
					incomplete = true
				}
				for _, r := range page.Records {
					if want[r.ID] {
						seen[r.ID]++
						lastNew = time.Now()
					}
				}
				if len(page.Records) == 0 || page.Next <= cursors[i] {
					break
				}
				cursors[i] = page.Next
			}
		}
		if len(seen) == len(want) {
			break
		}
		el := time.Since(start)
		if el >= settle || (m.Fraction < 1 && time.Since(lastNew) >= quiet) {
			break
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			m.Driver.logger().Info("waiting for mirrored copies", "seen", len(seen), "sent", len(want),
				"elapsed", el.Round(time.Second).String(), "settle", settle.String())
		}
		select {
		case <-ctx.Done():
			return rep, fmt.Errorf("mirror check: waiting for mirrored copies: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	rep.WaitedFor = time.Since(start)
	rep.WaitedSeconds = rep.WaitedFor.Seconds()
	mirrored := make([]bool, 0, n)
	for _, id := range ids[1:] {
		if id == "" {
			continue
		}
		c := seen[id]
		mirrored = append(mirrored, c > 0)
		if c > 0 {
			rep.Seen++
			rep.Duplicates += c - 1
		}
	}
	if len(mirrored) == 0 {
		return rep, fmt.Errorf("mirror check: none of %d requests to %s got a response (%s)", n, m.Driver.URL, sum.FailureText())
	}
	v, err := verdict.MirrorVerdict(m.Fraction, mirrored, m.Config)
	if err != nil {
		return rep, fmt.Errorf("mirror check: %w", err)
	}
	switch {
	case rep.LeakedResponses > 0:
		v.Decision = verdict.Fail
		v.Message = fmt.Sprintf("%d client responses came from the mirror backend %s; mirror responses must be discarded; %s",
			rep.LeakedResponses, m.MirrorIdentity, v.Message)
	case failures > m.MaxFailures:
		v.Decision = verdict.Fail
		v.Message = fmt.Sprintf("%d of %d primary requests failed, more than the %d allowed (%s); %s",
			failures, n, m.MaxFailures, sum.FailureText(), v.Message)
	case incomplete && v.Decision == verdict.Fail:
		v.Decision = verdict.Inconclusive
		v.Message = "the mirror's record ring evicted records during the check, so missing copies may have been overwritten (raise the echo backend's --records); " + v.Message
	}
	v.Message = fmt.Sprintf("mirror saw %d of %d requests (declared %.4g%%): %s", rep.Seen, len(mirrored), 100*m.Fraction, v.Message)
	rep.Verdict = v
	return rep, nil
}
