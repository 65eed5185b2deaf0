package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
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
// rows) gets one file per run: <prefix>.<n>.<name>.pprof. The heap's
// allocation profile is written at start and stop too (.allocs0.pprof,
// .allocs.pprof): `go tool pprof -sample_index=alloc_space -diff_base
// <allocs0> <allocs>` is what the row allocated. stop is idempotent.
func (s *selection) start(name string) (stop func() error, err error) {
	if s.profile == "" {
		return func() error { return nil }, nil
	}
	s.n++
	base := fmt.Sprintf("%s.%d.%s", strings.TrimSuffix(s.profile, ".pprof"), s.n, name)
	if err := writeAllocs(base + ".allocs0.pprof"); err != nil {
		return nil, err
	}
	path := base + ".pprof"
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
		return errors.Join(f.Close(), writeAllocs(base+".allocs.pprof"))
	}, nil
}

// writeAllocs writes the allocation profile so far to path, after a
// collection: the profile holds the allocations up to the last one, and a
// row of 20,000 gray samples has only two or three of its own.
func writeAllocs(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
}
