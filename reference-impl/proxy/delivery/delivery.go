// Package delivery consumes the reference controller's update stream (ir/delivery.go): it
// applies each update, the full state or a delta, and acknowledges it, reconnecting with
// backoff, and at once after a delta on a base it does not have.
package delivery

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Applier validates and applies an update; an error means it was rejected and the previous
// configuration stays. An error wrapping delta.ErrWrongBase means the update is a delta on
// another version than the one applied: the client then reconnects for the full state. The
// client does not validate: proxy.Proxy.ApplyUpdate does, for what the update changed.
type Applier interface {
	ApplyUpdate(u *ir.Update) error
}

// Client follows one Gateway's update stream. Zero optional fields mean the defaults noted.
type Client struct {
	// BaseURL is the controller's delivery address, e.g. "http://gatecheck-controller:18000".
	BaseURL string
	Gateway ir.NamespacedName
	// Proxy is this proxy's Pod name, sent with the stream request and every ack.
	Proxy string
	// HTTP is the client used; nil means a client with no overall timeout (the stream never
	// ends) but a 2 s dial timeout, so a proxy reconnects within seconds of a controller
	// restart instead of waiting out the default 30 s dial (seen: Gateways not Programmed for
	// 31 s after a restart).
	HTTP *http.Client
	// Logger nil discards logs.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound reconnect delays; defaults 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout ends a stream that carried nothing, not even a heartbeat, for this long;
	// default 3 * ir.HeartbeatInterval.
	IdleTimeout time.Duration
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c *Client) http() *http.Client {
	if c.HTTP == nil {
		return defaultHTTP
	}
	return c.HTTP
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
	ResponseHeaderTimeout: 10 * time.Second,
	MaxIdleConns:          4,
}}

func dflt(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

// Run follows the stream until ctx ends, applying every update with a and acknowledging it.
// It returns ctx's error.
func (c *Client) Run(ctx context.Context, a Applier) error {
	minB, maxB := dflt(c.MinBackoff, 100*time.Millisecond), dflt(c.MaxBackoff, 5*time.Second)
	backoff := minB
	start := time.Now()
	for attempt := 1; ; attempt++ {
		got, err := c.stream(ctx, a)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if got > 0 {
			backoff = minB
		}
		// Jitter spreads many proxies' reconnects after a controller restart.
		delay := backoff/2 + rand.N(backoff/2+1)

		c.log().Warn("update stream ended; reconnecting", "controller", c.BaseURL, "gateway", c.Gateway.String(),
			"error", err, "updates_received", got, "attempt", attempt, "retry_in", delay, "since_start", time.Since(start).Round(time.Second))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		backoff = min(2*backoff, maxB)
	}
}

// stream reads one stream connection to its end; it returns how many updates it received.
func (c *Client) stream(ctx context.Context, a Applier) (int, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return 0, fmt.Errorf("controller URL %q: %w", c.BaseURL, err)
	}
	u = u.JoinPath(ir.SnapshotsPath, c.Gateway.Namespace, c.Gateway.Name)
	u.RawQuery = url.Values{"proxy": {c.Proxy}}.Encode()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := c.http().Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return 0, fmt.Errorf("GET %s: %s: %s", u, res.Status, bytes.TrimSpace(b))
	}
	c.log().Info("connected to update stream", "url", u.String())
	idle := dflt(c.IdleTimeout, 3*ir.HeartbeatInterval)
	watchdog := time.AfterFunc(idle, func() { cancel(fmt.Errorf("no data or heartbeat for %v", idle)) })
	defer watchdog.Stop()
	br := bufio.NewReaderSize(res.Body, 64<<10)
	got := 0
	for {
		line, err := br.ReadBytes('\n')
		watchdog.Reset(idle)
		if line = bytes.TrimSpace(line); len(line) > 0 {
			got++
			if herr := c.handle(ctx, a, line); herr != nil {
				return got, herr
			}
		}
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return got, cause
			}
			if errors.Is(err, io.EOF) {
				return got, errors.New("controller closed the stream")
			}
			return got, err
		}
	}
}

// handle decodes, applies and acknowledges one update line. A delta on a base this proxy does
// not have is not acknowledged: handle returns its error, which ends the stream.
func (c *Client) handle(ctx context.Context, a Applier, line []byte) error {
	ack := ir.Ack{Gateway: c.Gateway, Proxy: c.Proxy}
	var u ir.Update
	if err := json.Unmarshal(line, &u); err != nil {
		// Ack what we can: the version, if that part decodes, so the controller sees why.
		var v struct {
			Version int64 `json:"version"`
		}
		json.Unmarshal(line, &v)
		ack.Version, ack.Error = v.Version, fmt.Sprintf("decode update: %v", err)
	} else {
		ack.Version = u.Version
		if u.Gateway != c.Gateway {
			ack.Error = fmt.Sprintf("update is for gateway %s, this proxy serves %s", u.Gateway, c.Gateway)
		} else if err := a.ApplyUpdate(&u); errors.Is(err, delta.ErrWrongBase) {
			c.log().Warn("update on another base; asking for the full state", "version", u.Version, "base", u.BaseVersion, "error", err)
			return err
		} else if err != nil {
			ack.Error = fmt.Sprintf("apply update version %d: %v", u.Version, err)
		}
	}
	if ack.Error != "" {
		c.log().Error("rejected update", "version", ack.Version, "error", ack.Error)
	} else {
		c.log().Info("applied update", "version", ack.Version, "base", u.BaseVersion, "upserts", len(u.Upserts), "deletes", len(u.Deletes))
	}
	c.ack(ctx, ack)
	return nil
}

// ack posts an Ack, retrying briefly; a lost ack is recovered on the next reconnect, when the
// controller sends the full state again.
func (c *Client) ack(ctx context.Context, ack ir.Ack) {
	body, _ := json.Marshal(ack)
	u, _ := url.Parse(c.BaseURL)
	target := u.JoinPath(ir.AcksPath).String()
	delay := 100 * time.Millisecond
	for attempt := 1; attempt <= 4; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := c.http().Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode/100 == 2 {
				return
			}
			err = fmt.Errorf("status %s", res.Status)
		}
		c.log().Warn("ack failed", "url", target, "version", ack.Version, "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
}
