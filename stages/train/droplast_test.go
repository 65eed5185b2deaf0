package train

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
)

// stepCounter is the real CPU engine, counting the batch sizes it steps and
// the schedule's view of the epoch.
type stepCounter struct {
	*engine.CPU
	sizes    []int
	perEpoch []int
	losses   []float64
}

func (s *stepCounter) Step(ctx context.Context, b engine.Batch) (engine.Stats, error) {
	st, err := s.CPU.Step(ctx, b)
	if err == nil {
		s.sizes = append(s.sizes, b.Size)
		s.perEpoch = append(s.perEpoch, b.PerEpoch)
		s.losses = append(s.losses, st.Loss)
	}
	return st, err
}

// TestShortLastBatch trains real SupCon and SimCLR steps (a tiny ResNet on
// 2x2 gray views) on an epoch whose size is 1 mod batch_size (a one-sample
// tail) and on one whose last batch holds a single class. With drop_last
// false every sample is stepped and the tail's step succeeds (SupContrast
// steps on it); with drop_last true the tail is acknowledged unstepped,
// reported as such, and the schedule counts floor(size/batch) steps.
func TestShortLastBatch(t *testing.T) {
	const batch = 4
	for _, method := range []string{engine.MethodSupCon, engine.MethodSimCLR} {
		for _, tc := range []struct {
			name   string
			size   int
			labels func(id int) int32
		}{
			{"one sample", 9, func(id int) int32 { return int32(id % 3) }},
			{"one class", 10, func(id int) int32 {
				if id >= 8 {
					return 2 // the tail, 8 and 9, is one class
				}
				return int32(id % 3)
			}},
		} {
			for _, dropLast := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/drop_last=%v", method, tc.name, dropLast), func(t *testing.T) {
					tr, err := engine.New(engine.Config{
						Model: engine.ModelConfig{Config: model.Config{Widths: []int{4, 4, 4, 4}, Blocks: []int{1, 1, 1, 1}, InChannels: 1, FeatDim: 8}, DType: "float32"},
						Train: engine.TrainConfig{Method: method, Optim: optim.Config{Momentum: 0.9},
							Schedule: optim.Schedule{BaseLR: 0.05, Epochs: 1, Decay: optim.DecayCosine}},
						Mean: []float64{0.5}, Std: []float64{0.25}, Seed: 1,
					})
					if err != nil {
						t.Fatal(err)
					}
					eng := &stepCounter{CPU: tr}
					var stats EpochStats
					l, err := newLoop(loopConfig{RunID: "r", BatchSize: batch, DropLast: dropLast, Views: 2, Height: 2, Width: 2, Channels: 1, Epochs: 1},
						eng, hooks{Epoch: func(_ context.Context, _ int, s EpochStats) error { stats = s; return nil }})
					if err != nil {
						t.Fatal(err)
					}
					a := newAcks()
					in := make(chan Delivery, tc.size)
					// Unbuffered: the loop has the epoch's size before any
					// delivery exists, so every step's schedule knows it.
					ctl := make(chan Control)
					done := make(chan error, 1)
					go func() { done <- l.run(t.Context(), in, ctl) }()
					ctl <- Control{Epoch: 1, EpochSize: tc.size}
					tail := map[int32]bool{}
					for id := range tc.size {
						d := a.delivery("r", 1, uint64(id), 2)
						d.Msg.Label = tc.labels(id)
						for i := range d.Msg.Pixels {
							d.Msg.Pixels[i] = byte(37*id + 11*i) // views differ
						}
						if id >= tc.size/batch*batch {
							tail[d.Msg.Label] = true
						}
						in <- d
					}
					if len(tail) != 1 {
						t.Fatalf("the test's tail holds classes %v, want one", tail)
					}
					if err := <-done; err != nil {
						t.Fatal(err)
					}
					full, rest := tc.size/batch, tc.size%batch
					wantSteps, wantPer, wantSamples := full+1, full+1, tc.size
					if dropLast {
						wantSteps, wantPer, wantSamples = full, full, full*batch
					}
					if len(eng.sizes) != wantSteps || stats.Steps != wantSteps || stats.Samples != wantSamples {
						t.Fatalf("steps %v (stats %d), samples %d; want %d steps, %d samples", eng.sizes, stats.Steps, stats.Samples, wantSteps, wantSamples)
					}
					if !dropLast && eng.sizes[full] != rest {
						t.Fatalf("last step of %d samples, want %d", eng.sizes[full], rest)
					}
					for i, p := range eng.perEpoch {
						if p != wantPer {
							t.Fatalf("step %d: schedule told %d batches per epoch, want %d", i, p, wantPer)
						}
					}
					for i, loss := range eng.losses {
						if math.IsNaN(loss) || math.IsInf(loss, 0) {
							t.Fatalf("step %d: loss %v", i, loss)
						}
					}
					if wantUn := tc.size - wantSamples; stats.Unstepped != wantUn || len(stats.UnsteppedIDs) != wantUn {
						t.Fatalf("unstepped %d %v, want %d", stats.Unstepped, stats.UnsteppedIDs, wantUn)
					}
					if len(a.acked) != tc.size || len(a.naked) != 0 {
						t.Fatalf("acked %d, naked %d of %d", len(a.acked), len(a.naked), tc.size)
					}
				})
			}
		}
	}
}
