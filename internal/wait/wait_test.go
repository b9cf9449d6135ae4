package wait

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestForSucceeds(t *testing.T) {
	t.Parallel()
	n := 0
	var out bytes.Buffer
	_, err := For(context.Background(), "three checks", time.Second, Options{Interval: time.Millisecond, ProgressEvery: time.Nanosecond, Out: &out},
		func(context.Context) (bool, string, error) { n++; return n == 3, "n=" + string(rune('0'+n)), nil })
	if err != nil || n != 3 {
		t.Fatalf("For() = %v after %d checks; want nil after 3", err, n)
	}
	if !strings.Contains(out.String(), "waiting for three checks") {
		t.Fatalf("progress output %q; want it to name what it waits for", out.String())
	}
}

func TestForTimeoutNamesWhatAndStatus(t *testing.T) {
	t.Parallel()
	_, err := For(context.Background(), "gatewayclass x Accepted", 20*time.Millisecond, Options{Interval: time.Millisecond},
		func(context.Context) (bool, string, error) { return false, "Accepted=Unknown", nil })
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v; want *TimeoutError", err)
	}
	if got := err.Error(); !strings.Contains(got, "gatewayclass x Accepted") || !strings.Contains(got, "Accepted=Unknown") {
		t.Fatalf("err = %q; want object and last status named", got)
	}
}

func TestForStopsOnError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := For(context.Background(), "x", time.Second, Options{Interval: time.Millisecond},
		func(context.Context) (bool, string, error) { return false, "", boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v; want boom", err)
	}
}

func TestForHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := For(ctx, "x", time.Minute, Options{Interval: time.Millisecond},
		func(context.Context) (bool, string, error) { return false, "", nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
}

func TestProgressSaysWhatAndStops(t *testing.T) {
	t.Parallel()
	lines := make(chan string, 100)
	stop := Progress("building coredns", 10*time.Millisecond, func(l string) { lines <- l })
	first := <-lines
	stop()
	if !strings.HasPrefix(first, "still building coredns (") || !strings.HasSuffix(first, " so far)") {
		t.Errorf("progress line %q; want \"still building coredns (<elapsed> so far)\"", first)
	}
	time.Sleep(30 * time.Millisecond)
	n := len(lines)
	time.Sleep(50 * time.Millisecond)
	if len(lines) != n {
		t.Errorf("progress went on after stop: %d lines, then %d", n, len(lines))
	}
}
