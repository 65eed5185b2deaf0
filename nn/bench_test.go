package nn

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	_ "github.com/supflow/supflow/internal/blasimpl"
)

// BenchmarkConv3x3 runs forward, input gradient and weight gradient of a
// 64->64 channel 3x3 stride-1 pad-1 convolution on a batch of 128 32x32
// images, the bulk of a CIFAR ResNet step. It reports GFLOP/s (2 multiply-
// adds per MAC, three GEMM-sized passes) and allocations per step, which
// must stay at zero once the buffers exist.
func BenchmarkConv3x3(b *testing.B) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		b.Run(dt.String(), func(b *testing.B) {
			const n, c, hw = 128, 64, 32
			rng := rand.New(rand.NewPCG(1, 1))
			fill := func(shape ...int) *tensor.Dense {
				t := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
				switch v := t.Data().(type) {
				case []float32:
					for i := range v {
						v[i] = float32(rng.NormFloat64())
					}
				case []float64:
					for i := range v {
						v[i] = rng.NormFloat64()
					}
				}
				return t
			}
			x, w, dy := fill(n, c, hw, hw), fill(c, c, 3, 3), fill(n, c, hw, hw)
			geom, err := newConvGeom(x.Shape(), w.Shape(), 1, 1)
			if err != nil {
				b.Fatal(err)
			}
			fwd := &convOp{opBase: newBase("bench"), stride: 1, pad: 1}
			gx := &convGradXOp{opBase: newBase("benchX"), geom: geom}
			gw := &convGradWOp{opBase: newBase("benchW"), geom: geom}
			step := func() {
				for _, call := range []struct {
					op G.Op
					in []G.Value
				}{{fwd, []G.Value{x, w}}, {gx, []G.Value{w, dy}}, {gw, []G.Value{x, dy}}} {
					if _, err := call.op.Do(call.in...); err != nil {
						b.Fatal(err)
					}
				}
			}
			step()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				step()
			}
			flops := 3 * 2 * float64(n*c*hw*hw*c*9)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
