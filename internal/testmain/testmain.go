// Package testmain runs Go tests inside an ordinary binary, so the gatecheck command carries
// the upstream conformance suite (which needs a real *testing.T) instead of compiling a test
// binary at run time.
package testmain

import (
	"errors"
	"io"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Run runs tests as `go test` would, with the testing package's flags (-test.v, -test.run,
// -test.timeout, ...) and every other flag registered on flag.CommandLine taken from
// os.Args[1:], and returns the exit code go test's generated main would.
//
// It uses testing.MainStart, the entry point of the main function `go test` generates. That
// function is exempt from the Go 1 promise: the deps type below matches Go 1.26's; a Go
// release that changes it fails to compile here, not at run time.
func Run(tests []testing.InternalTest) int {
	return testing.MainStart(deps{}, tests, nil, nil, nil).Run()
}

// corpusEntry is the testing package's alias for a fuzz corpus entry (an unnamed struct, so an
// identical struct type satisfies its interface).
type corpusEntry = struct {
	Parent     string
	Path       string
	Data       []byte
	Values     []any
	Generation int
	IsSeed     bool
}

var errFuzz = errors.New("testmain: fuzzing is not supported")

// deps is what testing.MainStart needs from the `go test` driver: pattern matching for
// -test.run and no-ops for profiling, coverage and fuzzing, which a suite run does not use.
type deps struct{}

var (
	matchMu  sync.Mutex
	matchPat string
	matchRe  *regexp.Regexp
)

func (deps) MatchString(pat, str string) (bool, error) {
	matchMu.Lock()
	defer matchMu.Unlock()
	if matchRe == nil || matchPat != pat {
		re, err := regexp.Compile(pat)
		if err != nil {
			return false, err
		}
		matchPat, matchRe = pat, re
	}
	return matchRe.MatchString(str), nil
}

func (deps) ImportPath() string                          { return "" }
func (deps) ModulePath() string                          { return "" }
func (deps) SetPanicOnExit0(bool)                        {}
func (deps) StartCPUProfile(io.Writer) error             { return nil }
func (deps) StopCPUProfile()                             {}
func (deps) StartTestLog(io.Writer)                      {}
func (deps) StopTestLog() error                          { return nil }
func (deps) WriteProfileTo(string, io.Writer, int) error { return nil }
func (deps) CoordinateFuzzing(time.Duration, int64, time.Duration, int64, int, []corpusEntry, []reflect.Type, string, string) error {
	return errFuzz
}
func (deps) RunFuzzWorker(func(corpusEntry) error) error              { return errFuzz }
func (deps) ReadCorpus(string, []reflect.Type) ([]corpusEntry, error) { return nil, errFuzz }
func (deps) CheckCorpus([]any, []reflect.Type) error                  { return nil }
func (deps) ResetCoverage()                                           {}
func (deps) SnapshotCoverage()                                        {}
func (deps) InitRuntimeCoverage() (string, func(string, string) (string, error), func() float64) {
	return "", nil, nil
}
