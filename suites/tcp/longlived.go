package tcp

import (
	"bytes"
	"fmt"
	"io"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	fixtures "github.com/gatecheck/gatecheck/fixtures/tcp"
)

// flips is how many times the other route changes backend while the connection is open.
const flips = 6

var _ = Describe("A long-lived TCP connection", Label("tcp", "feature:tcp", "disruption"), func() {
	It("survives changes to another route", func(ctx SpecContext) {
		applyRoutes(ctx, "longlived.yaml", map[string]any{"Backend": "t1"})
		convergeOn(ctx, portLong, "t1")
		convergeOn(ctx, portOther, "t1")

		c, err := dialEcho(ctx, portLong)
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		ping := func(i int) error {
			msg := []byte(fmt.Sprintf("ping %d\n", i))
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("write ping %d: %w", i, err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c.r, got); err != nil {
				return fmt.Errorf("read echo of ping %d: %w", i, err)
			}
			if !bytes.Equal(got, msg) {
				return fmt.Errorf("echo of ping %d: got %q; want %q", i, got, msg)
			}
			return nil
		}
		Expect(ping(0)).To(Succeed())
		backend := "t1"
		pings := 1
		var flipTimes []time.Duration
		for i := range flips {
			backend = map[string]string{"t1": "t2", "t2": "t1"}[backend]
			objs := env.Render(fixtures.Files, "longlived.yaml", map[string]any{"Backend": backend})
			Expect(env.Update(ctx, objs)).To(Succeed(), "flip %d: point tcp-other at %s", i+1, backend)
			// Keep the connection busy while the change propagates, then prove the change
			// took effect, so the connection really lived through a reprogrammed data plane.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				Expect(ping(pings)).To(Succeed(), "the long-lived connection on listener %d broke during flip %d of route tcp-other", portLong, i+1)
				pings++
				time.Sleep(50 * time.Millisecond)
			}
			start := time.Now()
			convergeOn(ctx, portOther, backend)
			took := time.Since(start) + 2*time.Second
			flipTimes = append(flipTimes, took)
			fmt.Fprintf(GinkgoWriter, "flip %d: tcp-other serves %s within %s of the change; the long-lived connection answered %d pings so far\n",
				i+1, backend, took.Round(time.Millisecond), pings)
		}
		Expect(ping(pings)).To(Succeed(), "after %d changes to route tcp-other", flips)
		AddReportEntry("tcp long-lived connection", fmt.Sprintf("one connection on listener %d (greeted by %s, connection %s) answered %d pings while route tcp-other changed backend %d times (each change served within %v, 2 s of pinging included)",
			portLong, c.greeting.Backend, c.greeting.ConnectionID, pings+1, flips, flipTimes))
	})
})
