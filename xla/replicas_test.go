package xla_test

import (
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/fixtures/resnetfix"
	"github.com/supflow/supflow/xla"
)

// TestStepReplicas splits tiny_basic's b4_16px batch over two replicas in
// float64: with SyncBN the loss, every gradient, the updated parameters,
// momentum and statistics equal the single-device step's at 1e-9 on both
// replicas; with per-replica batch norms (DDP) each replica's features and
// running statistics are those of a single-device step on its half, and
// both replicas agree on the loss and the update.
func TestStepReplicas(t *testing.T) {
	r := loadResnet(t, fixtures.Dir(t, "resnet"), "tiny_basic")
	c := r.Cases[0]
	m := r.model(t, tensor.Float64)
	const views, replicas = 2, 2
	shape := r.batch(t, c.Name)
	plane := shape.Channels * shape.Height * shape.Width
	input := r.get(t, c.Name+"/input")
	half := c.Bsz / replicas
	cfg := func(rows, reps int, sync bool) xla.StepConfig {
		return xla.StepConfig{Batch: xla.Batch{Rows: rows, Channels: shape.Channels, Height: shape.Height, Width: shape.Width}, Views: views,
			Replicas: reps, SyncBN: sync, Gradients: true, Loss: resnetfix.Loss, Optim: resnetfix.Optim}
	}
	state := r.initState(t, m)
	// part returns replica k's inputs: its samples' views and labels.
	part := func(k int) map[string][]float64 {
		in := map[string][]float64{xla.ArgReplica: {float64(k)}}
		for name, v := range state {
			in[name] = v
		}
		for v := range views {
			lo := (v*c.Bsz + k*half) * plane
			in[xla.ArgImages] = append(in[xla.ArgImages], input[lo:lo+half*plane]...)
		}
		for _, l := range c.Labels[k*half : (k+1)*half] {
			in[xla.ArgLabels] = append(in[xla.ArgLabels], float64(l))
		}
		return in
	}
	whole := map[string][]float64{xla.ArgImages: input}
	for name, v := range state {
		whole[name] = v
	}
	for _, l := range c.Labels {
		whole[xla.ArgLabels] = append(whole[xla.ArgLabels], float64(l))
	}
	single, err := xla.Step(m, cfg(len(input)/plane, 1, false))
	if err != nil {
		t.Fatal(err)
	}
	want := run(t, single, whole)

	t.Run("SyncBN", func(t *testing.T) {
		p, err := xla.Step(m, cfg(len(input)/plane, replicas, true))
		if err != nil {
			t.Fatal(err)
		}
		got := runReplicas(t, p, []map[string][]float64{part(0), part(1)})
		for k := range replicas {
			for _, a := range single.Outputs {
				if a.Name == xla.ArgEncoder || a.Name == xla.ArgFeatures {
					continue // each replica's rows
				}
				compareAt(t, a.Name, got[k][a.Name], want[a.Name], 1e-9)
			}
		}
	})

	t.Run("per-replica BN", func(t *testing.T) {
		p, err := xla.Step(m, cfg(len(input)/plane, replicas, false))
		if err != nil {
			t.Fatal(err)
		}
		got := runReplicas(t, p, []map[string][]float64{part(0), part(1)})
		local, err := xla.Step(m, cfg(views*half, 1, false))
		if err != nil {
			t.Fatal(err)
		}
		for k := range replicas {
			alone := run(t, local, part(k))
			compareAt(t, "features", got[k][xla.ArgFeatures], alone[xla.ArgFeatures], 1e-12)
			for _, b := range m.BufferInfos() {
				if _, ok := alone[b.Name]; ok {
					compareAt(t, b.Name, got[k][b.Name], alone[b.Name], 1e-12)
				}
			}
			for _, a := range p.Outputs {
				if strings.HasPrefix(a.Name, xla.PrefixGrad) || strings.HasPrefix(a.Name, xla.PrefixParam) || a.Name == xla.ArgLoss {
					compareAt(t, a.Name, got[k][a.Name], got[0][a.Name], 0)
				}
			}
		}
		// Statistics of 4 rows instead of 8: another loss.
		if got[0][xla.ArgLoss][0] == want[xla.ArgLoss][0] {
			t.Errorf("per-replica BN loss %g equals the whole-batch BN loss", got[0][xla.ArgLoss][0])
		}
	})

	if _, err := xla.Step(m, cfg(len(input)/plane, 3, false)); err == nil {
		t.Error("4 samples over 3 replicas: no error")
	}
}
