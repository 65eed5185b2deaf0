package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/internal/blasimpl"
	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/nn"
	"github.com/supflow/supflow/optim"
)

// childResult is the JSON line a -child run prints last.
type childResult struct {
	MSPerStep float64 `json:"ms_per_step"`
	// ConvMSPerStep is the wall time of convolution ops per timed step.
	ConvMSPerStep float64     `json:"conv_ms_per_step"`
	Loss          float64     `json:"loss"`
	RSS           []rssSample `json:"rss"`
}

// rssSample is the resident set size after a step (warm-up included) and
// the Go heap found live by the last GC: RSS growing while the live heap
// does not is GC headroom (GOGC), not a leak.
type rssSample struct {
	Step   int     `json:"step"`
	MB     float64 `json:"mb"`
	LiveMB float64 `json:"live_mb"`
	GCs    uint64  `json:"gcs"` // completed GC cycles: LiveMB is as of the last
}

// profiles names the pprof files a child writes; empty means none.
type profiles struct{ cpu, mem string }

// runChild times one case in this process, so that the parent reads the
// case's own peak RSS from the process's rusage.
func runChild(c benchCase, steps, blasThreads, maxRSSMB int, prof profiles) error {
	blasimpl.SetThreads(blasThreads)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(engine.GCPercent) // as supflow does
	}
	stop := watchRSS(maxRSSMB)
	defer stop()
	ch := c.model.InChannels
	mean, std := make([]float64, ch), make([]float64, ch)
	for i := range ch {
		mean[i], std[i] = 0.5, 0.25
	}
	// The optimizer and loss settings of torch_step.py.
	tr, err := engine.New(engine.Config{
		Model: engine.ModelConfig{Config: c.model},
		Train: engine.TrainConfig{
			Method:   engine.MethodSupCon,
			Loss:     loss.SupConConfig{Temperature: 0.1, BaseTemperature: 0.07},
			Optim:    optim.Config{Momentum: 0.9, WeightDecay: 1e-4},
			Schedule: optim.Schedule{BaseLR: 0.05, Epochs: 100, Decay: optim.DecayCosine},
		},
		Mean: mean,
		Std:  std,
		Seed: 1,
	})
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(1, 1))
	rows := c.bsz * c.views
	px := make([]uint8, rows*c.size*c.size*ch)
	for i := range px {
		px[i] = uint8(r.IntN(256))
	}
	labels := make([]int, c.bsz)
	for i := range labels {
		labels[i] = r.IntN(10)
	}
	ctx := context.Background()
	step := func() (float64, error) {
		if c.eval {
			_, _, err := tr.Encode(ctx, engine.Images{N: rows, Height: c.size, Width: c.size, Channels: ch, Pixels: px})
			return 0, err
		}
		st, err := tr.Step(ctx, engine.Batch{Size: c.bsz, Views: c.views, Height: c.size, Width: c.size, Channels: ch,
			Pixels: px, Labels: labels, Epoch: 1, PerEpoch: 1000})
		return st.Loss, err
	}
	var res childResult
	var timed, conv time.Duration
	total := warmup + steps
	for s := 1; s <= total; s++ {
		if s == warmup+1 && prof.cpu != "" {
			f, err := os.Create(prof.cpu)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		start, convStart := time.Now(), nn.ConvTime()
		l, err := step()
		if err != nil {
			return fmt.Errorf("step %d: %w", s, err)
		}
		if s > warmup {
			timed += time.Since(start)
			conv += nn.ConvTime() - convStart
		}
		res.Loss = l
		if s == total || sampleStep(s) {
			mb, err := procStatusMB("VmRSS")
			if err != nil {
				return err
			}
			m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
			metrics.Read(m)
			res.RSS = append(res.RSS, rssSample{Step: s, MB: mb, LiveMB: float64(m[0].Value.Uint64()) / (1 << 20), GCs: m[1].Value.Uint64()})
		}
	}
	res.MSPerStep = float64(timed.Microseconds()) / 1000 / float64(steps)
	res.ConvMSPerStep = float64(conv.Microseconds()) / 1000 / float64(steps)
	if prof.mem != "" {
		if err := writeHeapProfile(prof.mem); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sampleStep reports whether to record RSS after step s: 1, 2, 5, 10, 20,
// 50, ..., enough to see a trend over hundreds of steps.
func sampleStep(s int) bool {
	for s >= 10 && s%10 == 0 {
		s /= 10
	}
	return s == 1 || s == 2 || s == 5
}

// watchRSS ends the process when its RSS passes limitMB: an unbounded
// trainer would otherwise take the shared machine down with it.
func watchRSS(limitMB int) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if mb, err := procStatusMB("VmRSS"); err == nil && mb > float64(limitMB) {
					fmt.Fprintf(os.Stderr, "bench: RSS %.0f MB passed the %d MB cap (-max-rss-mb); aborting\n", mb, limitMB)
					os.Exit(3)
				}
			}
		}
	}()
	return func() { close(done) }
}

// procStatusMB reads a kB field such as VmRSS from /proc/self/status.
func procStatusMB(field string) (float64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("bench: no %s in /proc/self/status", field)
}
