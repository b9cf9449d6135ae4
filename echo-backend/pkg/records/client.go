package records

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Fetch asks the admin API at base (e.g. "http://10.0.0.5:9090") for the records matching q.
// A nil client means http.DefaultClient.
func Fetch(ctx context.Context, client *http.Client, base string, q Query) (Page, error) {
	v := url.Values{}
	if q.ID != "" {
		v.Set("id", q.ID)
	}
	if q.Since > 0 {
		v.Set("since", strconv.FormatUint(q.Since, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var p Page
	err := getJSON(ctx, client, base+"/records?"+v.Encode(), &p)
	return p, err
}

// FetchStats asks the admin API at base for its counters.
func FetchStats(ctx context.Context, client *http.Client, base string) (Stats, error) {
	var s Stats
	err := getJSON(ctx, client, base+"/stats", &s)
	return s, err
}

func getJSON(ctx context.Context, client *http.Client, u string, into any) error {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("records admin request %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("records admin GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("records admin GET %s: got status %d (%s); want 200", u, resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("records admin GET %s: decode: %w", u, err)
	}
	return nil
}
