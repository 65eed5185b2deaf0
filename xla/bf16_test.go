package xla_test

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/fixtures/resnetfix"
	"github.com/supflow/supflow/xla"
)

// TestStepBF16 runs the tiny_basic step in bfloat16 mixed precision and in
// float32 and bounds the difference: the loss within 1%, the gradient
// within 0.3 of its norm, the eval features within 0.02; the two differ
// (the program does round to bfloat16).
func TestStepBF16(t *testing.T) {
	r := loadResnet(t, fixtures.Dir(t, "resnet"), "tiny_basic")
	c := r.Cases[0]
	m := r.model(t, tensor.Float32)
	batch := r.batch(t, c.Name)
	in := r.stepInputs(t, m, c.Name, c.Labels)
	outs := map[bool]map[string][]float64{}
	feats := map[bool][]float64{}
	for _, bf16 := range []bool{false, true} {
		p, err := xla.Step(m, xla.StepConfig{Batch: batch, Views: 2, BF16: bf16, Gradients: true,
			Loss: resnetfix.Loss, Optim: resnetfix.Optim})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(p.Text), "bf16"); got != bf16 {
			t.Fatalf("bf16 %v: program mentions bf16: %v", bf16, got)
		}
		outs[bf16] = run(t, p, in)
		e, err := xla.Encode(m, xla.EncodeConfig{Batch: batch, BF16: bf16})
		if err != nil {
			t.Fatal(err)
		}
		feats[bf16] = run(t, e, in)[xla.ArgFeatures]
	}
	l32, l16 := outs[false][xla.ArgLoss][0], outs[true][xla.ArgLoss][0]
	t.Logf("loss float32 %.7g, bf16 %.7g", l32, l16)
	if d := math.Abs(l16 - l32); d > 0.01*math.Abs(l32) || d == 0 {
		t.Errorf("bf16 loss %g, float32 %g: difference not in (0, 1%%]", l16, l32)
	}
	// The whole gradient, all parameters as one vector: bf16 rounds every
	// convolution's operands, and the batch norms' backward on 8 rows
	// cancels much of the gradient, so the relative difference is far above
	// bf16's 2⁻⁹ (about 0.2 here on these fixtures; the same procedure in
	// float32 gives about 3e-6).
	var diff, norm float64
	for _, p := range m.ParamInfos() {
		g32, g16 := outs[false][xla.PrefixGrad+p.Name], outs[true][xla.PrefixGrad+p.Name]
		for i := range g32 {
			diff += (g16[i] - g32[i]) * (g16[i] - g32[i])
			norm += g32[i] * g32[i]
		}
	}
	rel := math.Sqrt(diff / norm)
	t.Logf("gradient: |g_bf16 - g_f32| / |g_f32| = %.3g", rel)
	if rel > 0.3 || rel == 0 {
		t.Errorf("bf16 gradient differs from float32 by %.3g of its norm: not in (0, 0.3]", rel)
	}
	compareAt(t, "bf16 eval features", feats[true], feats[false], 0.02)

	if _, err := xla.Step(r.model(t, tensor.Float64), xla.StepConfig{Batch: batch, Views: 2, BF16: true}); err == nil {
		t.Error("bf16 lowering of a float64 model: no error")
	}
}
