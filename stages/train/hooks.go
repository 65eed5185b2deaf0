package train

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/runs"
	"github.com/supflow/supflow/store"
)

// onStep records the step in the curves, logs it every LogEvery steps
// and moves the progress line.
func (s *Stage) onStep(st engine.Stats, wait time.Duration) {
	rate := float64(st.Samples) / (st.Duration + wait).Seconds()
	s.mu.Lock()
	s.curves.Points = append(s.curves.Points, report.Point{Step: st.Step, Epoch: report.Float(st.Epoch), Loss: report.Float(st.Loss),
		LR: report.Float(st.LR), SamplesPerSec: report.Float(rate), DataWaitSeconds: report.Float(wait.Seconds())})
	s.curves.Samples += int64(st.Samples)
	s.curves.Seconds += (st.Duration + wait).Seconds()
	s.mu.Unlock()
	if s.deps.Metrics != nil {
		s.deps.Metrics.Step(st.Epoch, st.Samples, st.Loss, st.LR, st.Duration, wait)
	}
	s.progress(fmt.Sprintf("epoch %d/%d", st.Epoch, s.cfg.Epochs), st.Batch+1, st.Batches,
		fmt.Sprintf("loss %.4f lr %.3g %.0f samples/s", st.Loss, st.LR, rate))
	if st.Step%int64(s.cfg.LogEvery) == 0 || st.Step == 1 {
		s.log.Info("step", "step", st.Step, "epoch", st.Epoch, "loss", fmt.Sprintf("%.4f", st.Loss), "lr", fmt.Sprintf("%.4g", st.LR),
			"samples_per_sec", fmt.Sprintf("%.1f", rate), "data_wait_seconds", fmt.Sprintf("%.3f", wait.Seconds()),
			"step_seconds", fmt.Sprintf("%.3f", st.Duration.Seconds()))
	}
}

// onEpoch runs the monitor and the checkpoint when they are due, then
// tells the feeder the epoch is trained.
func (s *Stage) onEpoch(ctx context.Context, epoch int, es EpochStats) error {
	cfg := s.cfg
	last := epoch == cfg.Epochs
	if s.deps.Monitor != nil && cfg.Monitor.Every > 0 && (epoch%cfg.Monitor.Every == 0 || last) {
		start := time.Now()
		sc, err := s.deps.Monitor.Score(ctx)
		if err != nil {
			return fmt.Errorf("kNN monitor: %w", err)
		}
		s.log.Info("kNN monitor", "epoch", epoch, "top1", fmt.Sprintf("%.4f", sc.Top1), "top5", fmt.Sprintf("%.4f", sc.Top5),
			"seconds", time.Since(start).Seconds())
		s.mu.Lock()
		s.curves.KNN = append(s.curves.KNN, report.KNNPoint{Epoch: epoch, Top1: report.Float(sc.Top1), Top5: report.Float(sc.Top5)})
		s.mu.Unlock()
		if s.deps.Metrics != nil {
			s.deps.Metrics.KNN(sc.Top1, sc.Top5)
		}
	}
	if epoch%cfg.CheckpointEvery == 0 || last {
		if err := s.checkpoint(ctx, epoch); err != nil {
			return err
		}
	}
	return s.publish(ctx, messages.Event{Kind: messages.EventEpochTrained, Epoch: uint32(epoch), Count: uint64(es.Samples)})
}

// checkpoint writes epoch-<n> and last, each one complete S3 object (a PUT
// is atomic: a reader never sees half a checkpoint), then the curves.
func (s *Stage) checkpoint(ctx context.Context, epoch int) error {
	b, err := s.deps.Engine.Save(epoch, map[string]string{"run_id": s.cfg.RunID})
	if err != nil {
		return err
	}
	for _, name := range []string{fmt.Sprintf("epoch-%d", epoch), runs.Last} {
		if err := s.deps.Store.Put(ctx, runs.Checkpoint(s.cfg.RunID, name), b, store.PutOptions{ContentType: "application/octet-stream"}); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	s.mu.Lock()
	s.curves.Finished = time.Now().UTC()
	curves, err := json.Marshal(s.curves)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.deps.Store.Put(ctx, runs.Key(s.cfg.RunID, runs.Curves), curves, store.PutOptions{ContentType: "application/json"}); err != nil {
		return err
	}
	if s.deps.Metrics != nil {
		s.deps.Metrics.Checkpoint(epoch, time.Now())
	}
	s.log.Info("checkpoint saved", "key", runs.Checkpoint(s.cfg.RunID, runs.Last), "epoch", epoch, "bytes", len(b))
	return nil
}
