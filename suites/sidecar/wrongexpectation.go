package sidecar

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatecheck/gatecheck/reports/model"
)

// This spec expects sidecar behaviour from a Pod whose "sidecar" is a regular container, and
// passes only if the predicates report each violation with a message that says what happened.
// It does not involve the Gateway implementation at all, and its premises are the kubelet's
// guarantees, not timings: a regular container's startupProbe gates no other container (main
// starts while the 2 s startup delay runs), every regular container gets SIGTERM at once, and
// the fake sidecar exits 1 s after it, main 2 s after.
var _ = Describe("Predicates against a regular container posing as a sidecar", Label("sidecar", "lifecycle:negative"), func() {
	It("reports that the fake sidecar neither starts first nor outlives the main container", func(ctx SpecContext) {
		const grace = 15 * time.Second
		pod := createPod(ctx, renderPod("wrongexpectation.yaml", params("wrong-expectation", nil)))
		waitPod(ctx, pod.Name, "both containers started", podStartTimeout, allStarted("sidecar", "main"))
		collectUntil(ctx, pod.Name, time.Minute, "sidecar started", "main started")
		tl := deleteAndFollow(ctx, pod.Name, grace, "sidecar", "main")
		logTimeline("regular container posing as a sidecar", tl)

		startErr := tl.StartsBefore("sidecar", "main")
		termErr := tl.SigtermAfterExit("main", "sidecar")
		exitErr := tl.ExitsBefore("main", "sidecar")
		var caught []string
		for _, e := range []error{startErr, termErr, exitErr} {
			if e != nil {
				caught = append(caught, strings.SplitN(e.Error(), "; timeline", 2)[0])
			}
		}
		d := model.DecisionPass
		if len(caught) != 3 {
			d = model.DecisionFail
		}
		AddReportEntry(model.Entry("predicates catch a regular container used as a sidecar", &model.SidecarTimelines{
			Variants: []model.SidecarTimeline{tl.Model("regular container (wrong)", containerNames(pod), map[string]string{"sidecar": "main", "main": "main"})},
			Decision: d,
			Message:  fmt.Sprintf("%d of 3 violations reported: %s", len(caught), strings.Join(caught, "; ")),
		}))

		Expect(startErr).To(MatchError(And(
			ContainSubstring("main was starting at"),
			ContainSubstring("before sidecar was started at"),
			ContainSubstring("want main to start only after sidecar has started"),
			ContainSubstring("timeline"))), "StartsBefore must catch main starting while the fake sidecar was still starting")
		Expect(termErr).To(MatchError(And(
			ContainSubstring("sidecar got SIGTERM at"),
			ContainSubstring("want SIGTERM only after main has exited"))), "SigtermAfterExit must catch the fake sidecar being signalled with main")
		// sidecar-as-regular exits 1 s after SIGTERM, main 2 s after: the sidecar dies first.
		Expect(exitErr).To(MatchError(ContainSubstring("want main to exit first")), "ExitsBefore must catch the fake sidecar exiting before main")
	})
})
