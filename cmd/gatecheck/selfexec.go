package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/gatecheck/gatecheck/internal/testmain"
	"github.com/gatecheck/gatecheck/runner"
	"github.com/gatecheck/gatecheck/suites/all"
	"github.com/gatecheck/gatecheck/suites/conformance"
)

// runHidden runs the hidden entry point named by args[1], if it is one, and returns its exit
// code. The runner re-executes this binary with them (runner.SuiteCommand,
// runner.ConformanceCommand), so a run compiles nothing and an installed gatecheck needs no
// source tree. They bypass cobra: their flags are Ginkgo's, the testing package's and the upstream suite's,
// all registered on flag.CommandLine, and they handle SIGINT themselves (Ginkgo runs its
// cleanups; the upstream suite's recorder has already written each finished test).
func runHidden(args []string) (int, bool) {
	if len(args) < 2 {
		return 0, false
	}
	switch args[1] {
	case runner.SuiteCommand:
		if len(args) < 3 {
			fmt.Fprintf(os.Stderr, "usage: %s %s NAME [-ginkgo.* flags]\n", args[0], runner.SuiteCommand)
			return 2, true
		}
		if err := flag.CommandLine.Parse(args[3:]); err != nil {
			return 2, true
		}
		var t ginkgoT
		ok, err := all.Run(&t, args[2], "")
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 2, true
		}
		if !ok || t.failed {
			return 1, true
		}
		return 0, true
	case runner.ConformanceCommand:
		// The runner stops the suite with SIGINT. A process started in the background by a
		// non-interactive shell inherits SIGINT ignored, and the testing package installs no
		// handler, so take it here: every finished test is already in the events file, and
		// exiting is what a test binary does on SIGINT.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			s := <-sig
			fmt.Fprintf(os.Stderr, "upstream suite stopped by %v\n", s)
			os.Exit(130)
		}()
		os.Args = append([]string{args[0]}, args[2:]...)
		return testmain.Run([]testing.InternalTest{{Name: "TestConformance", F: conformance.Test}}), true
	}
	return 0, false
}

// ginkgoT is the one method Ginkgo needs of a *testing.T.
type ginkgoT struct{ failed bool }

func (t *ginkgoT) Fail() { t.failed = true }
