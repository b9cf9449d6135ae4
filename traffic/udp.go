package traffic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/udpecho"
)

// UDP flows against gatecheck's echo-backend --mode=udp. A flow is one client socket (one
// source address:port) sending to a Gateway's UDP listener; every request datagram carries
// the flow's name and a sequence number, and the echo answers with them and its backend.

// UDPFlowOptions shape one flow.
type UDPFlowOptions struct {
	// Datagrams is how many request datagrams the flow sends (sequence numbers 0..n-1).
	Datagrams int
	// Gap is the pause between two sends (pacing); 0 sends back to back.
	Gap time.Duration
	// Wait is how long the flow waits for answers after its last send.
	Wait time.Duration
	// Size pads each request datagram to this many bytes.
	Size int
	// Window, when > 0, bounds the datagrams in flight: datagram i is sent only once every
	// datagram before i-Window+1 was answered or went unanswered for Expire. It keeps a flow
	// within the socket buffers on its path (this client's, the Gateway's, the backend's):
	// when a process on the path stalls (a busy machine: a build beside the run, a noisy
	// neighbour in CI), the flow waits instead of overflowing a buffer, so what a loss verdict
	// counts is what the data path dropped, not what the machine's load did. The pacing (Gap)
	// is unchanged while answers come: on a healthy path a flow has ~1 datagram in flight.
	Window int
	// Expire is how long an unanswered datagram holds its place in the Window; default 250ms.
	// An answer that comes later still counts.
	Expire time.Duration
}

// UDPLossWindow is the Window of gatecheck's loss measurements (the udp suite, gatecheck probe
// udp): 4 flows x 16 datagrams of 256 bytes in flight stay far inside the default socket
// buffers of the client, the Gateway and the backend (212992 bytes), so a process on the path
// that stalls on a busy machine delays the flows instead of overflowing a buffer. Without it a
// correct reference lost 3.65% of 2000 datagrams (1% allowed) in a `make conformance` run beside
// a `go test` of the proxy package: paced at 1 per ms, a 300 ms stall is ~300 datagrams a flow.
const UDPLossWindow = 16

func (o UDPFlowOptions) expire() time.Duration {
	if o.Expire > 0 {
		return o.Expire
	}
	return 250 * time.Millisecond
}

// UDPFlowResult is what one flow saw.
type UDPFlowResult struct {
	Flow string
	// Backend answered the flow's first answered datagram; Backends counts answers by backend
	// (more than one key: the flow was split, which per-flow routing never does).
	Backend  string
	Backends map[string]int
	Sent     int
	Answered int
	// Reordered counts answers whose sequence number is lower than one answered before;
	// Duplicates counts sequence numbers answered twice.
	Reordered  int
	Duplicates int
	// RTTs are the round-trip times of the answered datagrams.
	RTTs []time.Duration
}

// Lost is how many datagrams got no answer.
func (r UDPFlowResult) Lost() int { return r.Sent - (r.Answered - r.Duplicates) }

// Split reports whether more than one backend answered the flow.
func (r UDPFlowResult) Split() bool { return len(r.Backends) > 1 }

// BackendList renders Backends as "u1=3,u2=1".
func (r UDPFlowResult) BackendList() string {
	var parts []string
	for b, n := range r.Backends {
		parts = append(parts, fmt.Sprintf("%s=%d", b, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// UDPFlow runs one flow to addr from a fresh socket: it sends the datagrams, reads answers
// until every datagram was answered or Wait passed after the last send, and reports what came
// back. An error means the flow could not run (socket, send), not that datagrams were lost.
func UDPFlow(ctx context.Context, addr, flow string, o UDPFlowOptions) (UDPFlowResult, error) {
	res := UDPFlowResult{Flow: flow, Backends: map[string]int{}}
	if o.Datagrams < 1 {
		return res, errors.New("udp flow: Datagrams must be >= 1")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return res, fmt.Errorf("udp flow to %s: %w", addr, err)
	}
	defer c.Close()
	sentAt := make([]time.Time, o.Datagrams)
	seen := make([]bool, o.Datagrams) // under mu
	var mu sync.Mutex
	lastSend := time.Now()
	done := make(chan struct{})
	answered := make(chan struct{}, 1) // a datagram was answered: the Window may have room
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		maxSeq := int64(-1)
		for {
			mu.Lock()
			deadline := lastSend.Add(o.Wait)
			mu.Unlock()
			_ = c.SetReadDeadline(deadline)
			n, err := c.Read(buf)
			now := time.Now()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					mu.Lock()
					finished := res.Sent == o.Datagrams && !time.Now().Before(lastSend.Add(o.Wait))
					mu.Unlock()
					if finished || ctx.Err() != nil {
						return
					}
					continue
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// ECONNREFUSED from an ICMP error: the datagram is lost; keep reading.
				continue
			}
			a, err := udpecho.ParseAnswer(buf[:n])
			if err != nil || a.Flow != flow || a.Seq < 0 || a.Seq >= int64(o.Datagrams) {
				continue // not an answer to this flow
			}
			mu.Lock()
			res.Answered++
			if seen[a.Seq] {
				res.Duplicates++
			} else {
				seen[a.Seq] = true
				res.RTTs = append(res.RTTs, now.Sub(sentAt[a.Seq]))
			}
			if a.Seq < maxSeq {
				res.Reordered++
			}
			maxSeq = max(maxSeq, a.Seq)
			if res.Backend == "" {
				res.Backend = a.Backend
			}
			res.Backends[a.Backend]++
			// Every datagram answered (so every one was sent): the flow is done.
			all := res.Answered-res.Duplicates == o.Datagrams
			mu.Unlock()
			select {
			case answered <- struct{}{}:
			default:
			}
			if all {
				return
			}
		}
	}()
	oldest := 0 // the first datagram still holding a place in the Window
	for i := 0; i < o.Datagrams && ctx.Err() == nil; i++ {
		if i > 0 && o.Gap > 0 {
			time.Sleep(o.Gap)
		}
		for o.Window > 0 && ctx.Err() == nil {
			mu.Lock()
			now := time.Now()
			for oldest < i && (seen[oldest] || now.Sub(sentAt[oldest]) >= o.expire()) {
				oldest++
			}
			var wait time.Duration
			if i-oldest >= o.Window {
				wait = sentAt[oldest].Add(o.expire()).Sub(now)
			}
			mu.Unlock()
			if wait <= 0 {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-answered:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		mu.Lock()
		sentAt[i] = time.Now()
		lastSend = sentAt[i]
		mu.Unlock()
		if _, err := c.Write(udpecho.Request(flow, int64(i), o.Size)); errors.Is(err, net.ErrClosed) {
			<-done
			return res, fmt.Errorf("udp flow to %s: send: %w", addr, err)
		}
		// Any other send error (ECONNREFUSED from an earlier ICMP port unreachable) is the
		// datagram's loss, counted as such.
		mu.Lock()
		res.Sent++
		mu.Unlock()
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	return res, ctx.Err()
}

// UDPStats adds up flows: datagrams sent, answered, lost, reordered, flows split, and a
// histogram of round-trip times in microseconds.
type UDPStats struct {
	mu                              sync.Mutex
	Flows, Split                    int
	Sent, Answered, Reordered, Dups int
	Hist                            *hdrhistogram.Histogram
}

// NewUDPStats returns empty stats.
func NewUDPStats() *UDPStats {
	return &UDPStats{Hist: hdrhistogram.New(1, 60_000_000, 3)}
}

// Add counts one flow.
func (s *UDPStats) Add(r UDPFlowResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Flows++
	if r.Split() {
		s.Split++
	}
	s.Sent += r.Sent
	s.Answered += r.Answered - r.Duplicates
	s.Reordered += r.Reordered
	s.Dups += r.Duplicates
	for _, d := range r.RTTs {
		_ = s.Hist.RecordValue(max(d.Microseconds(), 1))
	}
}

// Lost is how many datagrams got no answer.
func (s *UDPStats) Lost() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Sent - s.Answered
}

// LossRate is Lost / Sent (0 when nothing was sent).
func (s *UDPStats) LossRate() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Sent == 0 {
		return 0
	}
	return float64(s.Sent-s.Answered) / float64(s.Sent)
}

// Summary is one line: flows, datagrams, loss, reordering, split flows.
func (s *UDPStats) Summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	loss := 0.0
	if s.Sent > 0 {
		loss = 100 * float64(s.Sent-s.Answered) / float64(s.Sent)
	}
	return fmt.Sprintf("%d flows, %d datagrams sent, %d answered, %d lost (%.2f%%), %d answers reordered, %d duplicated, %d flows answered by more than one backend",
		s.Flows, s.Sent, s.Answered, s.Sent-s.Answered, loss, s.Reordered, s.Dups, s.Split)
}

// UDPFlowBackend returns a SampleBackends probe: each call runs a new flow of o.Datagrams
// datagrams and returns the backend that answered it. A flow answered by two backends, or by
// none, is an error (per-flow routing answers every flow, from one backend); every flow is
// added to stats.
func UDPFlowBackend(addr, prefix string, o UDPFlowOptions, stats *UDPStats) func(context.Context) (string, error) {
	var mu sync.Mutex
	n := 0
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		n++
		flow := fmt.Sprintf("%s-%d", prefix, n)
		mu.Unlock()
		r, err := UDPFlow(ctx, addr, flow, o)
		if err != nil {
			return "", err
		}
		stats.Add(r)
		switch {
		case r.Split():
			return "", fmt.Errorf("flow %s was answered by more than one backend (%s)", flow, r.BackendList())
		case r.Backend == "":
			return "", fmt.Errorf("flow %s: none of its %d datagrams was answered within %s", flow, r.Sent, o.Wait)
		}
		return r.Backend, nil
	}
}

// UDPStickyFlow is one long-lived client socket: every exchange belongs to the same flow.
type UDPStickyFlow struct {
	Name string
	c    net.Conn
	seq  int64
}

// DialUDPFlow opens a flow's socket to addr.
func DialUDPFlow(ctx context.Context, addr, name string) (*UDPStickyFlow, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("udp flow %s to %s: %w", name, addr, err)
	}
	return &UDPStickyFlow{Name: name, c: c}, nil
}

// Close closes the flow's socket.
func (f *UDPStickyFlow) Close() error { return f.c.Close() }

// Exchange sends one datagram and returns the backend that answered it, trying up to 3 times
// with 2 s each (a lost datagram is not what a stickiness check measures).
func (f *UDPStickyFlow) Exchange() (string, error) {
	buf := make([]byte, 65535)
	for try := 0; try < 3; try++ {
		f.seq++
		if _, err := f.c.Write(udpecho.Request(f.Name, f.seq, 64)); err != nil && errors.Is(err, net.ErrClosed) {
			return "", err
		}
		_ = f.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := f.c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				continue // ECONNREFUSED: keep waiting for this try's answer
			}
			a, err := udpecho.ParseAnswer(buf[:n])
			if err == nil && a.Flow == f.Name && a.Seq == f.seq {
				return a.Backend, nil
			}
		}
	}
	return "", fmt.Errorf("flow %s: no answer in 3 tries", f.Name)
}

// UDPIdleResult is what UDPIdleCheck observed.
type UDPIdleResult struct {
	Flows int `json:"flows"`
	// Timeout is the idle timeout checked; Within is the gap between exchanges that stays
	// under it, After the idle time past it.
	Timeout time.Duration `json:"timeout"`
	Within  time.Duration `json:"within"`
	After   time.Duration `json:"after"`
	// MovedWithin counts flows that changed backend although never idle for Timeout (must be
	// 0); MovedAfter counts flows on another backend after After idle (0 of many flows on a
	// split route: flows never expire).
	MovedWithin int    `json:"movedWithin"`
	MovedAfter  int    `json:"movedAfter"`
	Message     string `json:"message"`
}

// OK reports whether flows stuck within the timeout and some moved after it.
func (r UDPIdleResult) OK() bool { return r.MovedWithin == 0 && r.MovedAfter > 0 }

// UDPIdleCheck opens flows flows to addr (a route splitting them between backends), keeps
// them busy for 4 rounds 0.4 x timeout apart (none may move), then leaves them idle 1.6 x
// timeout and counts how many come back on another backend.
func UDPIdleCheck(ctx context.Context, addr string, flows int, timeout time.Duration) (UDPIdleResult, error) {
	r := UDPIdleResult{Flows: flows, Timeout: timeout, Within: timeout * 2 / 5, After: timeout * 8 / 5}
	fs := make([]*UDPStickyFlow, 0, flows)
	defer func() {
		for _, f := range fs {
			f.Close()
		}
	}()
	first := make([]string, 0, flows)
	for i := range flows {
		f, err := DialUDPFlow(ctx, addr, fmt.Sprintf("idle-%d", i))
		if err != nil {
			return r, err
		}
		fs = append(fs, f)
		b, err := f.Exchange()
		if err != nil {
			return r, err
		}
		first = append(first, b)
	}
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	moved := make([]bool, flows)
	for round := 0; round < 4; round++ {
		if err := sleep(r.Within); err != nil {
			return r, err
		}
		for i, f := range fs {
			b, err := f.Exchange()
			if err != nil {
				return r, err
			}
			if b != first[i] && !moved[i] {
				moved[i] = true
				r.MovedWithin++
			}
		}
	}
	if err := sleep(r.After); err != nil {
		return r, err
	}
	for i, f := range fs {
		b, err := f.Exchange()
		if err != nil {
			return r, err
		}
		if b != first[i] {
			r.MovedAfter++
		}
	}
	r.Message = fmt.Sprintf("%d of %d flows moved while never idle %s (must be 0); %d of %d moved after %s idle (must be > 0)",
		r.MovedWithin, flows, timeout, r.MovedAfter, flows, r.After)
	return r, nil
}
