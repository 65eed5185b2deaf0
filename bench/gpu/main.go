//go:build cgo

// Command gpu is the XLA half of bench/gpu/run.sh (issue 13's GPU checks):
// it loads a PJRT plugin, compiles and runs the programs package xla emits
// and prints GPU lines: the plugin and devices, parity of both ResNet
// fixtures in float32 against the PyTorch float64 references, and the
// speed of SupCon steps and eval encoding for the given shapes; with
// -imagefolder it writes the end-to-end run's synthetic JPEGs. Build it
// with cgo on the development machine and copy it over (run.sh does).
package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/internal/fixtures/resnetfix"
	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/xla"
	"github.com/supflow/supflow/xla/device"
)

func main() {
	plugin := flag.String("plugin", os.Getenv("SUPFLOW_PJRT_PLUGIN"), "PJRT plugin .so (absolute path)")
	fixtures := flag.String("testdata", "testdata/resnet", "ResNet fixture folder")
	speeds := flag.String("speed", "resnet50:imagenet:224:128,resnet50:imagenet:224:256,resnet50:cifar:32:512", "arch:stem:size:batch,... SupCon steps to time (bf16, 2 views)")
	steps := flag.Int("steps", 20, "timed steps per shape (after 3 warm-up steps)")
	checkParity := flag.Bool("parity", true, "check the fixtures")
	prealloc := flag.Bool("preallocate", true, "let the plugin preallocate most of the GPU memory (off: memory use is visible to nvidia-smi)")
	folder := flag.String("imagefolder", "", "only write a synthetic JPEG ImageFolder here (train and val splits) for the end-to-end run, and exit")
	classes := flag.Int("classes", 10, "-imagefolder: classes")
	perClass := flag.Int("per-class", 256, "-imagefolder: train images per class (val: a quarter)")
	flag.Parse()
	if *folder != "" {
		if err := writeFolder(*folder, *classes, *perClass, 320, 256); err != nil {
			fmt.Println("GPU FAIL: imagefolder:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*plugin, map[string]any{"preallocate": *prealloc}, *fixtures, *speeds, *steps, *checkParity); err != nil {
		fmt.Println("GPU FAIL:", err)
		os.Exit(1)
	}
}

func run(plugin string, options map[string]any, fixtures, speeds string, steps int, checkParity bool) error {
	if plugin == "" {
		return errors.New("no plugin: pass -plugin or set SUPFLOW_PJRT_PLUGIN")
	}
	d, err := device.Open(plugin, options)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Println("GPU", d.Describe())
	failed := false
	for _, name := range []string{"tiny_basic", "tiny_bottleneck"} {
		if !checkParity {
			break
		}
		ok, err := parity(d, fixtures, name)
		if err != nil {
			return fmt.Errorf("parity %s: %w", name, err)
		}
		failed = failed || !ok
	}
	for _, s := range strings.Split(speeds, ",") {
		if s == "" {
			continue
		}
		if err := speed(d, s, steps); err != nil {
			return fmt.Errorf("speed %s: %w", s, err)
		}
	}
	if failed {
		return errors.New("parity outside tolerance")
	}
	return nil
}

// execute uploads in (by input name), runs p and returns its outputs by
// name.
func execute(d *device.Device, p *xla.Program, in map[string][]float64) (map[string][]float64, error) {
	exe, err := d.Compile(p)
	if err != nil {
		return nil, err
	}
	bufs := make([]xla.Buffer, len(p.Inputs))
	for i, a := range p.Inputs {
		v, ok := in[a.Name]
		if !ok {
			return nil, fmt.Errorf("no value for %s", a.Name)
		}
		if bufs[i], err = d.Upload(0, a, v); err != nil {
			return nil, err
		}
	}
	res, err := exe.Run(bufs, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]float64, len(res))
	for i, a := range p.Outputs {
		if out[a.Name], err = res[i].Download(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parity runs the first case of fixture name in float32: the step (loss,
// train features, every gradient) and the eval encode, each within 1e-4
// (gradients relative to the largest entry) of the float64 references.
func parity(d *device.Device, dir, name string) (bool, error) {
	f, err := resnetfix.Read(dir, name)
	if err != nil {
		return false, err
	}
	st := f.Tensors
	get := func(n string) []float64 {
		v, _, e := st.Float64s(n)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	m, err := model.New(f.Config(), tensor.Float32, 1)
	if err != nil {
		return false, err
	}
	c := f.Cases[0]
	batch, err := f.Batch(c.Name)
	if err != nil {
		return false, err
	}
	step, err := xla.Step(m, xla.StepConfig{Batch: batch, Views: 2, Gradients: true, Loss: resnetfix.Loss, Optim: resnetfix.Optim})
	if err != nil {
		return false, err
	}
	enc, err := xla.Encode(m, xla.EncodeConfig{Batch: batch})
	if err != nil {
		return false, err
	}
	in, err := f.StepInputs(m, c.Name, c.Labels)
	if err != nil {
		return false, err
	}
	after := map[string][]float64{}
	for _, bi := range m.BufferInfos() {
		if !strings.HasSuffix(bi.Name, model.NumBatchesTracked) {
			after[bi.Name] = get(c.Name + "/after_forward1/" + bi.Name)
		}
	}
	if err != nil {
		return false, err
	}
	start := time.Now()
	out, err := execute(d, step, in)
	if err != nil {
		return false, err
	}
	lossDiff := math.Abs(out[xla.ArgLoss][0] - c.LossStep1)
	featDiff := maxDiff(out[xla.ArgFeatures], get(c.Name+"/train/features"))
	var gradDiff, scale float64
	for _, p := range m.ParamInfos() {
		want := get(c.Name + "/grad/" + p.Name)
		gradDiff = max(gradDiff, maxDiff(out[xla.PrefixGrad+p.Name], want))
		scale = max(scale, maxDiff(want, make([]float64, len(want))))
	}
	var statDiff float64
	for n, want := range after {
		statDiff = max(statDiff, maxDiff(out[n], want))
	}
	for n, v := range after {
		in[n] = v
	}
	ev, err := execute(d, enc, in)
	if err != nil {
		return false, err
	}
	evalDiff := maxDiff(ev[xla.ArgFeatures], get(c.Name+"/eval_init/features"))
	if err != nil {
		return false, err
	}
	ok := lossDiff <= 1e-4 && featDiff <= 1e-4 && gradDiff <= 1e-4*scale && statDiff <= 1e-4 && evalDiff <= 1e-4
	verdict := "ok"
	if !ok {
		verdict = "FAIL"
	}
	fmt.Printf("GPU parity %s/%s float32: loss %.2g features %.2g grads %.2g (of max %.3g) bn stats %.2g eval features %.2g (tolerance 1e-4) %s [%v incl. compile]\n",
		name, c.Name, lossDiff, featDiff, gradDiff, scale, statDiff, evalDiff, verdict, time.Since(start).Round(time.Millisecond))
	return ok, nil
}

func maxDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := range a {
		if d := math.Abs(a[i] - b[i]); !(d <= m) {
			m = d
		}
	}
	return m
}

// speed times a bf16 SupCon step (2 views, MLP head, SGD momentum, state
// donated from step to step) and the bf16 eval encode of spec
// arch:stem:size:batch.
func speed(d *device.Device, spec string, steps int) error {
	f := strings.Split(spec, ":")
	if len(f) != 4 {
		return fmt.Errorf("want arch:stem:size:batch")
	}
	size, err1 := strconv.Atoi(f[2])
	bsz, err2 := strconv.Atoi(f[3])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	m, err := model.New(model.Config{Arch: f[0], Stem: f[1]}, tensor.Float32, 1)
	if err != nil {
		return err
	}
	const views = 2
	mean, std := []float64{0.485, 0.456, 0.406}, []float64{0.229, 0.224, 0.225}
	batch := xla.Batch{Rows: views * bsz, Channels: 3, Height: size, Width: size, Mean: mean, Std: std}
	t0 := time.Now()
	p, err := xla.Step(m, xla.StepConfig{Batch: batch, Views: views, BF16: true,
		Loss: loss.SupConConfig{Temperature: 0.1, BaseTemperature: 0.07}, Optim: optim.Config{Momentum: 0.9, WeightDecay: 1e-4}})
	if err != nil {
		return err
	}
	exe, err := d.Compile(p)
	if err != nil {
		return err
	}
	compile := time.Since(t0)
	rng := rand.New(rand.NewPCG(1, 2))
	state := m.State()
	bufs := make([]xla.Buffer, len(p.Inputs))
	for i, a := range p.Inputs {
		var v []float64
		switch name := strings.TrimPrefix(a.Name, xla.PrefixParam); {
		case a.Name == xla.ArgLR:
			v = []float64{0.05}
		case a.Name == xla.ArgLabels:
			for range bsz {
				v = append(v, float64(rng.IntN(10)))
			}
		case a.Name == xla.ArgImages:
			v = make([]float64, views*bsz*size*size*3)
			for j := range v {
				v[j] = float64(rng.IntN(256))
			}
		case strings.HasPrefix(a.Name, xla.PrefixMomentum):
			v = make([]float64, shapeSize(a.Shape))
		default:
			v = widen(state[name].F32)
		}
		if bufs[i], err = d.Upload(0, a, v); err != nil {
			return err
		}
	}
	ins, outs := xla.Donated(p)
	var last xla.Buffer
	var start time.Time
	for s := range steps + 3 {
		if s == 3 {
			if _, err := last.Download(); err != nil { // wait for the warm-up
				return err
			}
			start = time.Now()
		}
		res, err := exe.Run(bufs, ins)
		if err != nil {
			return err
		}
		for k, i := range ins {
			bufs[i] = res[outs[k]]
		}
		last = res[0]
	}
	l, err := last.Download()
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("GPU xla step %s bf16 batch %dx%d: %.0f samples/s (%.0f images/s), %.1f ms/step, loss %.4f, compile %v\n",
		spec, views, bsz, float64(steps*bsz)/el.Seconds(), float64(steps*bsz*views)/el.Seconds(), el.Seconds()*1000/float64(steps), l[0], compile.Round(time.Millisecond))
	return encodeSpeed(d, m, p, bufs, batch, spec, steps)
}

// encodeSpeed times the bf16 eval encode of the step's images with the
// step's state (the buffers of the inputs of the same names).
func encodeSpeed(d *device.Device, m *model.Model, step *xla.Program, bufs []xla.Buffer, batch xla.Batch, spec string, steps int) error {
	p, err := xla.Encode(m, xla.EncodeConfig{Batch: batch, BF16: true})
	if err != nil {
		return err
	}
	exe, err := d.Compile(p)
	if err != nil {
		return err
	}
	byName := make(map[string]xla.Buffer, len(bufs))
	for i, a := range step.Inputs {
		byName[a.Name] = bufs[i]
	}
	in := make([]xla.Buffer, len(p.Inputs))
	for i, a := range p.Inputs {
		in[i] = byName[a.Name]
	}
	var last xla.Buffer
	var start time.Time
	for s := range steps + 3 {
		if s == 3 {
			if _, err := last.Download(); err != nil {
				return err
			}
			start = time.Now()
		}
		res, err := exe.Run(in, nil)
		if err != nil {
			return err
		}
		last = res[0]
	}
	if _, err := last.Download(); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("GPU xla encode %s bf16 batch %d: %.0f images/s\n", spec, batch.Rows, float64(steps*batch.Rows)/el.Seconds())
	return nil
}

func shapeSize(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
