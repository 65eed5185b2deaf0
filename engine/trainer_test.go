package engine

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
)

func tinyConfig(method, dtype string) Config {
	return Config{
		Model: ModelConfig{Config: model.Config{Widths: []int{4, 8, 8, 16}, Blocks: []int{1, 1, 1, 1}, InChannels: 1, FeatDim: 16}, DType: dtype},
		Train: TrainConfig{
			Method:   method,
			Optim:    optim.Config{Momentum: 0.9, WeightDecay: 1e-4},
			Schedule: optim.Schedule{BaseLR: 0.1, Epochs: 10, Decay: optim.DecayCosine},
		},
		Classes: 4,
		Mean:    []float64{0.5},
		Std:     []float64{0.25},
		Seed:    1,
	}
}

// synth draws 8x8 gray images of 4 classes: each class lights one quadrant,
// plus noise and a random brightness, so the views of a sample differ.
func synth(r *rand.Rand, label int) []uint8 {
	px := make([]uint8, 64)
	for y := range 8 {
		for x := range 8 {
			v := 40 + r.Float64()*60
			if (y/4)*2+x/4 == label {
				v += 120
			}
			px[y*8+x] = uint8(min(255, v*(0.8+0.4*r.Float64())))
		}
	}
	return px
}

func synthBatch(r *rand.Rand, bsz, views int) Batch {
	b := Batch{Size: bsz, Views: views, Height: 8, Width: 8, Channels: 1, Labels: make([]int, bsz), Epoch: 1, PerEpoch: 1}
	b.Pixels = make([]uint8, bsz*views*64)
	for i := range bsz {
		b.Labels[i] = r.IntN(4)
	}
	b.Labels[0], b.Labels[1] = 0, 1 // never a single class
	for v := range views {
		for i := range bsz {
			copy(b.Pixels[(v*bsz+i)*64:], synth(r, b.Labels[i]))
		}
	}
	return b
}

func TestLearnsToSeparateClasses(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few hundred steps")
	}
	tr, err := New(tinyConfig(MethodSupCon, "float32"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	var first, last float64
	const steps = 300
	for s := range steps {
		b := synthBatch(r, 16, 2)
		b.Epoch, b.Index, b.PerEpoch = 1+s*10/steps, s%(steps/10), steps/10
		st, err := tr.Step(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case s < 10:
			first += st.Loss / 10
		case s >= steps-10:
			last += st.Loss / 10
		}
	}
	if !(last < 0.8*first) {
		t.Errorf("loss %0.3f -> %0.3f: did not go down", first, last)
	}
	acc := knnAccuracy(t, tr, r)
	t.Logf("SupCon loss %.3f -> %.3f, 5-NN accuracy %.2f (chance 0.25)", first, last, acc)
	if acc < 0.8 {
		t.Errorf("kNN accuracy %.2f on held-back samples, want well above chance (0.25)", acc)
	}
}

// knnAccuracy encodes 200 reference and 100 held-back samples and scores a
// 5-nearest-neighbour cosine vote.
func knnAccuracy(t *testing.T, tr *CPU, r *rand.Rand) float64 {
	t.Helper()
	draw := func(n int) ([]float32, []int, int) {
		im := Images{N: n, Height: 8, Width: 8, Channels: 1, Pixels: make([]uint8, n*64)}
		labels := make([]int, n)
		for i := range labels {
			labels[i] = i % 4
			copy(im.Pixels[i*64:], synth(r, labels[i]))
		}
		f, d, err := tr.Encode(context.Background(), im)
		if err != nil {
			t.Fatal(err)
		}
		return f, labels, d
	}
	ref, refLabels, d := draw(200)
	query, qLabels, _ := draw(100)
	norm := func(v []float32) []float32 {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(float64(x) / math.Max(math.Sqrt(s), 1e-12))
		}
		return out
	}
	correct := 0
	for q := range qLabels {
		qv := norm(query[q*d : (q+1)*d])
		type nb struct {
			sim   float64
			label int
		}
		nbs := make([]nb, len(refLabels))
		for i := range refLabels {
			rv := norm(ref[i*d : (i+1)*d])
			var s float64
			for k := range rv {
				s += float64(qv[k] * rv[k])
			}
			nbs[i] = nb{s, refLabels[i]}
		}
		sort.Slice(nbs, func(a, b int) bool { return nbs[a].sim > nbs[b].sim })
		votes := make([]int, 4)
		for _, n := range nbs[:5] {
			votes[n.label]++
		}
		best := 0
		for c := range votes {
			if votes[c] > votes[best] {
				best = c
			}
		}
		if best == qLabels[q] {
			correct++
		}
	}
	return float64(correct) / float64(len(qLabels))
}

// TestResumeIsExact trains 5 steps straight, and 3 steps + save + load into
// a fresh trainer + 2 steps: the losses of the last 2 steps must agree.
func TestResumeIsExact(t *testing.T) {
	for _, dt := range []string{"float64", "float32"} {
		t.Run(dt, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			batches := make([]Batch, 5)
			for i := range batches {
				batches[i] = synthBatch(r, 8, 2)
				batches[i].Epoch, batches[i].Index, batches[i].PerEpoch = 1+i/3, i%3, 3
			}
			ctx := context.Background()
			straight, _ := New(tinyConfig(MethodSupCon, dt))
			var want []float64
			for _, b := range batches {
				st, err := straight.Step(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, st.Loss)
			}
			first, _ := New(tinyConfig(MethodSupCon, dt))
			for _, b := range batches[:3] {
				if _, err := first.Step(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			ckpt, err := first.Save(1, nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := tinyConfig(MethodSupCon, dt)
			cfg.Seed = 99 // different init: everything must come from the checkpoint
			resumed, _ := New(cfg)
			meta, err := resumed.Load(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			if meta.Step != 3 || meta.Epoch != 1 || resumed.Steps() != 3 {
				t.Fatalf("meta = %+v, steps %d", meta, resumed.Steps())
			}
			if !reflect.DeepEqual(resumed.Model().State(), first.Model().State()) {
				t.Fatal("model state differs after save and load")
			}
			for i, b := range batches[3:] {
				st, err := resumed.Step(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				if st.Loss != want[3+i] {
					t.Errorf("step %d after resume: loss %v, uninterrupted %v", 4+i, st.Loss, want[3+i])
				}
			}
		})
	}
}

func TestMethods(t *testing.T) {
	for _, m := range []string{MethodSupCon, MethodSimCLR, MethodCE} {
		t.Run(m, func(t *testing.T) {
			tr, err := New(tinyConfig(m, "float32"))
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(5, 6))
			st, err := tr.Step(context.Background(), synthBatch(r, 8, 2))
			if err != nil || !(st.Loss > 0) || st.LR <= 0 {
				t.Fatalf("stats %+v, err %v", st, err)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tr, err := New(tinyConfig(MethodSupCon, "float32"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mutate := func(f func(*Batch)) Batch { b := synthBatch(r, 4, 2); f(&b); return b }
	cases := map[string]struct {
		b    Batch
		want error
	}{
		"short pixels":  {mutate(func(b *Batch) { b.Pixels = b.Pixels[1:] }), ErrBatch},
		"labels count":  {mutate(func(b *Batch) { b.Labels = b.Labels[:3] }), ErrBatch},
		"channels":      {mutate(func(b *Batch) { b.Channels = 3; b.Pixels = make([]uint8, 4*2*64*3) }), ErrBatch},
		"no pixels":     {mutate(func(b *Batch) { b.Pixels = nil }), ErrBatch},
		"epoch outside": {mutate(func(b *Batch) { b.Epoch = 11 }), ErrBatch},
	}
	for name, tc := range cases {
		if _, err := tr.Step(ctx, tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	for name, mut := range map[string]func(*Config){
		"model.arch":        func(c *Config) { c.Model.Arch = "vgg11" },
		"train.method":      func(c *Config) { c.Train.Method = "byol" },
		"mean":              func(c *Config) { c.Mean = []float64{0.5, 0.5, 0.5} },
		"std":               func(c *Config) { c.Std = []float64{0} },
		"model.dtype":       func(c *Config) { c.Model.DType = "float16" },
		"train.lr":          func(c *Config) { c.Train.Schedule.BaseLR = -1 },
		"train.optimizer":   func(c *Config) { c.Train.Optim.Optimizer = "adam" },
		"train.temperature": func(c *Config) { c.Train.Loss.Temperature = -1 },
		"classes":           func(c *Config) { c.Train.Method, c.Classes = MethodCE, 1 },
	} {
		cfg := tinyConfig(MethodSupCon, "float32")
		mut(&cfg)
		_, err := New(cfg)
		if fe := field.List(err); !errors.Is(err, ErrConfig) || len(fe) != 1 || fe[0].Key != name {
			t.Errorf("config %s: err = %v, want ErrConfig naming %s", name, err, name)
		}
	}
}

func TestLoadRefusesAnotherModel(t *testing.T) {
	a, _ := New(tinyConfig(MethodSupCon, "float32"))
	ckpt, err := a.Save(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(MethodSupCon, "float32")
	cfg.Model.Widths = []int{4, 8, 8, 32}
	b, _ := New(cfg)
	_, err = b.Load(ckpt)
	if !errors.Is(err, checkpoint.ErrMismatch) || !strings.Contains(err.Error(), "encoder.layer4") {
		t.Fatalf("err = %v", err)
	}
	c, _ := New(tinyConfig(MethodSupCon, "float64"))
	if _, err := c.Load(ckpt); !errors.Is(err, checkpoint.ErrMismatch) {
		t.Fatalf("dtype mismatch: err = %v", err)
	}
	if _, err := c.Load(ckpt[:100]); err == nil {
		t.Fatal("truncated checkpoint accepted")
	}
}

// TestStepsOnBatchesWithoutNegatives: SupContrast steps on a batch whose
// samples share one label (every other view is a positive; the loss is
// finite and positive) and on a one-sample tail batch (the other view is
// the only candidate: loss exactly 0), for SupCon and SimCLR alike. Such
// batches occur at the end of any split of size 1 mod batch_size.
func TestStepsOnBatchesWithoutNegatives(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, method := range []string{MethodSupCon, MethodSimCLR} {
		tr, err := New(tinyConfig(method, "float64"))
		if err != nil {
			t.Fatal(err)
		}
		same := synthBatch(r, 4, 2)
		same.Labels = []int{2, 2, 2, 2}
		st, err := tr.Step(context.Background(), same)
		if err != nil || !(st.Loss > 0) {
			t.Errorf("%s, one class: loss %v, %v", method, st.Loss, err)
		}
		one := synthBatch(r, 2, 2)
		one.Size, one.Labels = 1, one.Labels[:1]
		one.Pixels = append(one.Pixels[:64:64], one.Pixels[2*64:3*64]...) // view 0 and 1 of sample 0
		st, err = tr.Step(context.Background(), one)
		if err != nil || st.Loss != 0 {
			t.Errorf("%s, one sample: loss %v, %v", method, st.Loss, err)
		}
	}
}

// TestProjectIsEncodeWithTheHead: Project's features are Encode's, and its
// projections are unit rows of the head's width, the same for an image
// whichever chunk it is in (130 images: a full chunk and a padded one).
func TestProjectIsEncodeWithTheHead(t *testing.T) {
	tr, err := New(tinyConfig(MethodSupCon, "float32"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	const n = 130
	im := Images{N: n, Height: 8, Width: 8, Channels: 1, Pixels: make([]uint8, n*64)}
	for i := range n {
		copy(im.Pixels[i*64:], synth(r, i%4))
	}
	want, wd, err := tr.Encode(t.Context(), im)
	if err != nil {
		t.Fatal(err)
	}
	f, d, proj, p, err := tr.Project(t.Context(), im)
	if err != nil {
		t.Fatal(err)
	}
	if d != wd || !slices.Equal(f, want) || p != tr.Model().Config().FeatDim || len(proj) != n*p {
		t.Fatalf("features %d (%d), projections %d x %d", d, wd, len(proj)/max(p, 1), p)
	}
	for i := range n {
		var s float64
		for _, v := range proj[i*p : (i+1)*p] {
			s += float64(v) * float64(v)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("projection %d has squared norm %v", i, s)
		}
	}
	last := Images{N: 1, Height: 8, Width: 8, Channels: 1, Pixels: im.Pixels[(n-1)*64:]}
	_, _, one, _, err := tr.Project(t.Context(), last)
	if err != nil {
		t.Fatal(err)
	}
	for j, v := range one {
		if math.Abs(float64(v-proj[(n-1)*p+j])) > 1e-5 {
			t.Fatalf("image %d alone: projection[%d] %v, in the batch %v", n-1, j, v, proj[(n-1)*p+j])
		}
	}
}
