package main

import (
	"context"
	"fmt"
	"runtime"
	"sort"
)

// workMeter prices a case's work (decode + augment alone: no bus, no S3)
// as the pipeline rows are priced, once before each of them. One
// measurement of a fraction of a second moved by up to 30% from run to run
// (a GC cycle of the bench's heap landing in it or not), which alone moved
// a row's "vs work" by as much; the rows are compared with the median.
type workMeter struct {
	n    int
	fn   func(context.Context, int) error
	runs []pipeRun
}

// measure runs the work once more.
func (w *workMeter) measure(ctx context.Context) error {
	r, err := direct(ctx, w.n, w.fn)
	if err != nil {
		return err
	}
	w.runs = append(w.runs, r)
	return nil
}

// median is the run of median CPU (measure must have run).
func (w *workMeter) median() pipeRun {
	s := append([]pipeRun(nil), w.runs...)
	sort.Slice(s, func(i, j int) bool { return s[i].cpu < s[j].cpu })
	return s[(len(s)-1)/2]
}

// perSample is the median CPU seconds per sample.
func (w *workMeter) perSample() float64 { return w.median().cpu / float64(w.n) }

// spread says how far the measurements lay apart, in ms per sample.
func (w *workMeter) spread() string {
	lo, hi := w.runs[0].cpu, w.runs[0].cpu
	for _, r := range w.runs {
		lo, hi = min(lo, r.cpu), max(hi, r.cpu)
	}
	return fmt.Sprintf("%d runs, %.3f-%.3f ms", len(w.runs), 1e3*lo/float64(w.n), 1e3*hi/float64(w.n))
}

// settle collects the garbage of what ran before, so that a measurement
// does not pay for its predecessor's.
func settle() { runtime.GC() }
