package traffic

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/time/rate"
)

// RequestIDHeader carries each request's unique id; the echo backend records and echoes it.
const RequestIDHeader = "x-request-id"

// Driver sends HTTP requests to one URL. The zero value of each optional field is noted.
type Driver struct {
	// URL is the target; required, http or https.
	URL string
	// Method defaults to GET.
	Method string
	// Host overrides the Host header (for gateways addressed by IP); empty keeps the URL's.
	Host string
	// Header is added to every request (e.g. x-api-version for header-matched canaries).
	Header http.Header
	// Concurrency is the number of requests in flight; default 8.
	Concurrency int
	// Rate caps requests per second over all workers; 0 means as fast as Concurrency allows.
	Rate float64
	// FreshConnections opens one connection per request, so per-connection balancing is
	// exercised; the default reuses keep-alive connections.
	FreshConnections bool
	// H2C speaks HTTP/2 without TLS (prior knowledge); the default is HTTP/1.1.
	H2C bool
	// InsecureSkipVerify accepts any server certificate (staging gateways with self-signed
	// certificates); the default verifies.
	InsecureSkipVerify bool
	// Timeout bounds each request; default 10s.
	Timeout time.Duration
	// Identity names the backend of a response; default JSONIdentity("backend", "pod").
	Identity IdentityFunc
	// Client, when set, is used as is and FreshConnections and H2C are ignored.
	Client *http.Client
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
	// ProgressEvery is the interval between progress lines; default 5s.
	ProgressEvery time.Duration

	once    sync.Once
	client  *http.Client
	initErr error
	runID   string
	runs    atomic.Int64
	single  atomic.Int64
}

// Result is one request's outcome.
type Result struct {
	Seq       int           `json:"seq"`
	RequestID string        `json:"requestId"`
	Status    int           `json:"status,omitempty"`
	Backend   string        `json:"backend,omitempty"`
	Proto     string        `json:"proto,omitempty"`
	Latency   time.Duration `json:"latency"`
	// Conn names the client connection that carried the request (its local address), so
	// that a split per connection can be told from one per request.
	Conn string `json:"conn,omitempty"`
	// Err is a transport error, or why a response could not be identified.
	Err error `json:"-"`
}

// OK reports a 2xx response whose backend was identified.
func (r Result) OK() bool {
	return r.Err == nil && r.Status >= 200 && r.Status < 300 && r.Backend != ""
}

// Limit bounds a run; zero fields do not bound. A run also ends when observe says stop.
type Limit struct {
	Requests int
	Duration time.Duration
}

// maxBody bounds how much of each response is read; echo answers are ~1 KiB.
const maxBody = 1 << 20

func (d *Driver) init() error {
	d.once.Do(func() {
		u, err := url.Parse(d.URL)
		if err != nil {
			d.initErr = fmt.Errorf("driver url %q: %w", d.URL, err)
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.initErr = fmt.Errorf("driver url %q: want http://host[:port]/path or https://...", d.URL)
			return
		}
		if d.H2C && u.Scheme != "http" {
			d.initErr = fmt.Errorf("driver url %q: h2c needs an http:// url", d.URL)
			return
		}
		if d.Concurrency < 0 || d.Rate < 0 || d.Timeout < 0 {
			d.initErr = fmt.Errorf("driver: concurrency %d, rate %g, timeout %s: want values >= 0", d.Concurrency, d.Rate, d.Timeout)
			return
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		d.runID = hex.EncodeToString(b[:])
		d.client = d.Client
		if d.client == nil {
			d.client = &http.Client{Transport: d.transport()}
		}
		// Redirects are answers to judge, not to follow.
		if d.client.CheckRedirect == nil {
			c := *d.client
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			d.client = &c
		}
	})
	return d.initErr
}

func (d *Driver) transport() *http.Transport {
	t := &http.Transport{
		Proxy:               nil, // a probe aims at the address given, never a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        d.concurrency() * 2,
		MaxIdleConnsPerHost: d.concurrency() * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableKeepAlives:   d.FreshConnections,
		ForceAttemptHTTP2:   false,
	}
	if !d.FreshConnections {
		// One connection per worker, by construction: a worker's next request can start before
		// its previous connection is back in the idle pool, and on a loaded machine the
		// transport then dialled a fifth connection for four workers, which a per-connection
		// verdict would count as another unit.
		t.MaxConnsPerHost = d.concurrency()
	}
	if d.InsecureSkipVerify {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by the user
	}
	if d.H2C {
		// net/http speaks h2c with prior knowledge since Go 1.24; no x/net/http2 needed.
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

func (d *Driver) concurrency() int {
	if d.Concurrency <= 0 {
		return 8
	}
	return d.Concurrency
}

func (d *Driver) timeout() time.Duration {
	if d.Timeout <= 0 {
		return 10 * time.Second
	}
	return d.Timeout
}

func (d *Driver) identity() IdentityFunc {
	if d.Identity == nil {
		return JSONIdentity()
	}
	return d.Identity
}

func (d *Driver) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Do sends one request outside a run (its id is "gc-<driver>-s<n>", unique for the Driver).
func (d *Driver) Do(ctx context.Context, seq int) Result {
	if err := d.init(); err != nil {
		return Result{Seq: seq, Err: err}
	}
	return d.do(ctx, seq, fmt.Sprintf("gc-%s-s%d", d.runID, d.single.Add(1)))
}

// do sends one request with the given id. Ids never repeat within a Driver, so that records
// left by an earlier run (or by convergence requests) never match a later one; within a
// run they end in the sending sequence number.
func (d *Driver) do(ctx context.Context, seq int, id string) Result {
	res := Result{Seq: seq, RequestID: id}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	method := d.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, d.URL, nil)
	if err != nil {
		res.Err = fmt.Errorf("build request: %w", err)
		return res
	}
	for k, vs := range d.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if d.Host != "" {
		req.Host = d.Host
	}
	req.Header.Set(RequestIDHeader, res.RequestID)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if info.Conn != nil {
				res.Conn = info.Conn.LocalAddr().String()
			}
		},
	}))
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		res.Latency = time.Since(start)
		res.Err = err
		return res
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	res.Latency = time.Since(start)
	res.Status, res.Proto = resp.StatusCode, resp.Proto
	if err != nil {
		res.Err = fmt.Errorf("read response body: %w", err)
		return res
	}
	if res.Status >= 200 && res.Status < 300 {
		res.Backend, res.Err = d.identity()(resp, body)
	}
	return res
}

// Summary counts a run's outcomes.
type Summary struct {
	Sent      int `json:"sent"`
	Completed int `json:"completed"`
	// Observed is how many results were passed to observe (the rest arrived after stop).
	Observed int `json:"observed"`
	// Status counts responses by status code; TransportErrors requests with no response;
	// Unidentified 2xx responses whose backend could not be read.
	Status          map[int]int    `json:"status"`
	TransportErrors int            `json:"transportErrors"`
	Unidentified    int            `json:"unidentified"`
	Backends        map[string]int `json:"backends"`
	// ErrorSamples keeps the first few distinct error texts, for a person to read.
	ErrorSamples []string       `json:"errorSamples,omitempty"`
	Protocols    map[string]int `json:"protocols,omitempty"`
	Elapsed      time.Duration  `json:"-"`
	// ElapsedSeconds is Elapsed for JSON readers.
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	Latency        Latency `json:"latency"`

	hist *hdrhistogram.Histogram
}

// Latency summarises response latencies in milliseconds (HdrHistogram, 3 significant digits).
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	P999  float64 `json:"p999Ms"`
	Max   float64 `json:"maxMs"`
}

// Histogram returns the latency histogram in microseconds, for merging into reports.
func (s *Summary) Histogram() *hdrhistogram.Histogram { return s.hist }

// Failures counts transport errors, non-2xx and unidentified responses.
func (s *Summary) Failures() int {
	n := s.TransportErrors + s.Unidentified
	for code, c := range s.Status {
		if code < 200 || code > 299 {
			n += c
		}
	}
	return n
}

// FailureText says what failed, e.g. "503: 12, transport errors: 3 (first: dial tcp ...)".
func (s *Summary) FailureText() string {
	var parts []string
	codes := make([]int, 0, len(s.Status))
	for code := range s.Status {
		if code < 200 || code > 299 {
			codes = append(codes, code)
		}
	}
	sort.Ints(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d: %d", c, s.Status[c]))
	}
	if s.TransportErrors > 0 {
		parts = append(parts, fmt.Sprintf("transport errors: %d", s.TransportErrors))
	}
	if s.Unidentified > 0 {
		parts = append(parts, fmt.Sprintf("unidentified 2xx: %d", s.Unidentified))
	}
	out := strings.Join(parts, ", ")
	if len(s.ErrorSamples) > 0 {
		out += " (first: " + s.ErrorSamples[0] + ")"
	}
	return out
}

func newSummary() Summary {
	return Summary{
		Status:    map[int]int{},
		Backends:  map[string]int{},
		Protocols: map[string]int{},
		// 1 µs to 10 min, 3 significant digits.
		hist: hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3),
	}
}

func (s *Summary) add(r Result) {
	s.Completed++
	us := r.Latency.Microseconds()
	if us < 1 {
		us = 1
	}
	_ = s.hist.RecordValue(us) // values above 10 min are clamped by the timeout long before
	if r.Status == 0 {
		s.TransportErrors++
	} else {
		s.Status[r.Status]++
		s.Protocols[r.Proto]++
		if r.Status >= 200 && r.Status < 300 {
			if r.Backend != "" {
				s.Backends[r.Backend]++
			} else {
				s.Unidentified++
			}
		}
	}
	if r.Err != nil && len(s.ErrorSamples) < 5 {
		txt := r.Err.Error()
		for _, e := range s.ErrorSamples {
			if e == txt {
				return
			}
		}
		s.ErrorSamples = append(s.ErrorSamples, txt)
	}
}

func (s *Summary) finish(elapsed time.Duration) {
	s.Elapsed, s.ElapsedSeconds = elapsed, elapsed.Seconds()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s.Latency = Latency{
		Count: s.hist.TotalCount(),
		Mean:  s.hist.Mean() / 1000,
		P50:   ms(s.hist.ValueAtQuantile(50)),
		P90:   ms(s.hist.ValueAtQuantile(90)),
		P99:   ms(s.hist.ValueAtQuantile(99)),
		P999:  ms(s.hist.ValueAtQuantile(99.9)),
		Max:   ms(s.hist.Max()),
	}
}

// Run sends requests until limit is reached, observe returns true, or ctx ends. observe is
// called from one goroutine, in completion order; results still in flight when it says stop
// are counted in the Summary but not observed. Request failures are data in the Summary;
// the error is for a driver that cannot run (bad URL) or a cancelled ctx.
func (d *Driver) Run(ctx context.Context, limit Limit, observe func(Result) (stop bool)) (Summary, error) {
	sum := newSummary()
	if err := d.init(); err != nil {
		return sum, err
	}
	start := time.Now()
	produceCtx, cancelProduce := context.WithCancel(ctx)
	defer cancelProduce()
	if limit.Duration > 0 {
		var c context.CancelFunc
		produceCtx, c = context.WithTimeout(produceCtx, limit.Duration)
		defer c()
	}
	var limiter *rate.Limiter
	if d.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(d.Rate), 1)
	}
	jobs := make(chan int)
	results := make(chan Result, d.concurrency())
	go func() {
		defer close(jobs)
		for seq := 1; limit.Requests <= 0 || seq <= limit.Requests; seq++ {
			if limiter != nil && limiter.Wait(produceCtx) != nil {
				return
			}
			select {
			case jobs <- seq:
			case <-produceCtx.Done():
				return
			}
		}
	}()
	prefix := fmt.Sprintf("gc-%s-%d-", d.runID, d.runs.Add(1))
	var wg sync.WaitGroup
	var sentMu sync.Mutex
	sent := 0
	for w := 0; w < d.concurrency(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range jobs {
				sentMu.Lock()
				sent++
				sentMu.Unlock()
				results <- d.do(ctx, seq, prefix+strconv.Itoa(seq))
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	every := d.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	stopped := false
	log := d.logger()
	for {
		select {
		case r, ok := <-results:
			if !ok {
				sentMu.Lock()
				sum.Sent = sent
				sentMu.Unlock()
				sum.finish(time.Since(start))
				return sum, ctx.Err()
			}
			sum.add(r)
			// Requests cut short by the caller's cancellation say nothing about the target.
			if stopped || observe == nil || (ctx.Err() != nil && errors.Is(r.Err, context.Canceled)) {
				continue
			}
			sum.Observed++
			if observe(r) {
				stopped = true
				cancelProduce()
			}
		case <-tick.C:
			el := time.Since(start)
			log.Info("sending requests", "url", d.URL, "completed", sum.Completed, "failures", sum.Failures(),
				"elapsed", el.Round(time.Second).String(), "rate", fmt.Sprintf("%.0f/s", float64(sum.Completed)/el.Seconds()))
		}
	}
}
