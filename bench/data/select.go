package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime/pprof"
	"strings"
)

// selection is which pipeline rows run (-case) and whether each is
// profiled (-cpuprofile): set once from the flags, before any case runs.
type selection struct {
	cases   *regexp.Regexp // nil: every row
	profile string         // file name prefix; "" for none
	n       int            // profiles written so far
}

var sel selection

// match reports whether the pipeline row named as in its PIPELINE line
// (case=<name>) runs.
func (s *selection) match(name string) bool { return s.cases == nil || s.cases.MatchString(name) }

// anyMatch reports whether one of names runs: a case skips its setup
// (decoded shards, for instance) when none of its rows does.
func (s *selection) anyMatch(names ...string) bool {
	for _, n := range names {
		if s.match(n) {
			return true
		}
	}
	return false
}

// start begins the CPU profile of the row name, if profiling; the
// returned stop ends it. A row that runs twice (the alternating fused
// rows) gets one file per run: <prefix>.<n>.<name>.pprof. stop is
// idempotent.
func (s *selection) start(name string) (stop func() error, err error) {
	if s.profile == "" {
		return func() error { return nil }, nil
	}
	s.n++
	path := fmt.Sprintf("%s.%d.%s.pprof", strings.TrimSuffix(s.profile, ".pprof"), s.n, name)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	stopped := false
	return func() error { // idempotent: also deferred for the error paths
		if stopped {
			return nil
		}
		stopped = true
		pprof.StopCPUProfile()
		fmt.Printf("cpu profile of %s: %s\n", name, path)
		return f.Close()
	}, nil
}
