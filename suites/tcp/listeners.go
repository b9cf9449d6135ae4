package tcp

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// payloadSize is the integrity check's payload: 10 MB each way.
const payloadSize = 10 << 20

var _ = Describe("TCPRoute per listener", Label("tcp", "feature:tcp"), Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		applyRoutes(ctx, "listeners.yaml", nil)
		convergeOn(ctx, portA, "t1")
		convergeOn(ctx, portB, "t2")
	})

	It("sends each listener's connections to its own route's backend (sectionName)", func(ctx SpecContext) {
		got := map[string]int{}
		for range 20 {
			a, err := backendOn(ctx, portA)
			Expect(err).NotTo(HaveOccurred())
			b, err := backendOn(ctx, portB)
			Expect(err).NotTo(HaveOccurred())
			got["tcp-a->"+a]++
			got["tcp-b->"+b]++
		}
		Expect(got).To(Equal(map[string]int{"tcp-a->t1": 20, "tcp-b->t2": 20}))
	})

	It("carries 10 MB each way intact, then closes cleanly", func(ctx SpecContext) {
		c, err := dialEcho(ctx, portA)
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		payload := make([]byte, payloadSize)
		_, _ = rand.Read(payload)
		want := sha256.Sum256(payload)
		start := time.Now()
		writeErr := make(chan error, 1)
		go func() {
			_, err := c.Write(payload)
			if err == nil {
				err = c.CloseWrite() // half-close: the echo answers with the rest and closes
			}
			writeErr <- err
		}()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		h := sha256.New()
		n, err := io.Copy(h, c.r)
		Expect(err).NotTo(HaveOccurred(), "read the echo after %d bytes", n)
		Expect(<-writeErr).To(Succeed(), "write 10 MB and half-close")
		took := time.Since(start)
		Expect(n).To(BeEquivalentTo(payloadSize), "echoed bytes")
		Expect(fmt.Sprintf("%x", h.Sum(nil))).To(Equal(fmt.Sprintf("%x", want)), "sha256 of the echoed payload")
		AddReportEntry("tcp payload integrity", fmt.Sprintf("%d bytes each way through listener %d in %s (%.1f MB/s), sha256 %x",
			n, portA, took.Round(time.Millisecond), float64(2*n)/took.Seconds()/1e6, want[:8]))
	})
})
