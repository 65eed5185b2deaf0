package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/stages/train"
	"github.com/supflow/supflow/store"
	"github.com/supflow/supflow/trainer"
)

// Object keys of a run's outputs in the bucket.
func runKey(cfg *config.Config, name string) string { return path.Join("runs", cfg.Run.ID, name) }
func checkpointKey(cfg *config.Config, name string) string {
	return runKey(cfg, path.Join("checkpoints", name+".safetensors"))
}

// loadDataset reads the manifest, classes and info of the configured data
// set: training never lists the bucket.
func loadDataset(ctx context.Context, cfg *config.Config, s *store.Client) (dataset.Dataset, error) {
	d, err := dataset.Load(ctx, s, cfg.Dataset.Prefix)
	if errors.Is(err, store.ErrNotFound) {
		return d, fmt.Errorf("no data set under s3://%s/%s (%w): run `supflow ingest` first", s.Bucket(), cfg.Dataset.Prefix, err)
	}
	return d, err
}

// trainerFor loads the data set and builds the trainer pipeline.yaml
// describes for it.
func trainerFor(ctx context.Context, cfg *config.Config, s *store.Client) (dataset.Dataset, *trainer.CPU, error) {
	d, err := loadDataset(ctx, cfg, s)
	if err != nil {
		return d, nil, err
	}
	tr, err := newTrainer(cfg, d.Info, len(d.Classes))
	if err != nil {
		return d, nil, usageError{err}
	}
	return d, tr, nil
}

// newTrainer builds the trainer that pipeline.yaml describes for data set d.
func newTrainer(cfg *config.Config, info dataset.Info, classes int) (*trainer.CPU, error) {
	m := cfg.Model
	mc := model.Config{Arch: m.Arch, Stem: m.Stem, Head: m.Head, FeatDim: m.FeatDim, InChannels: info.Channels}
	copy(mc.Widths[:], m.Widths)
	copy(mc.Blocks[:], m.Blocks)
	t := cfg.Train
	return trainer.New(trainer.Config{
		Model: mc, DType: m.DType, Method: t.Method, Classes: classes,
		Loss:  loss.SupConConfig{Temperature: t.Temperature, BaseTemperature: t.BaseTemperature},
		Optim: optim.Config{Momentum: t.Momentum, WeightDecay: t.WeightDecay, LARS: t.Optimizer == "lars"},
		Schedule: optim.Schedule{BaseLR: t.LR, Epochs: t.Epochs, Cosine: t.Schedule == "cosine", Warm: t.Warm,
			BatchSize: t.BatchSize, WarmEpochs: t.WarmEpochs},
		Mean: info.Mean, Std: info.Std, Seed: cfg.Run.Seed,
	})
}

// tasksOf turns manifest entries into decode tasks (at most limit; 0 = all).
func tasksOf(runID string, entries []dataset.Entry, limit int) []messages.DecodeTask {
	if limit > 0 && len(entries) > limit {
		entries = entries[:limit]
	}
	out := make([]messages.DecodeTask, len(entries))
	for i, e := range entries {
		out[i] = messages.DecodeTask{RunID: runID, SampleID: uint64(i), Key: e.Key, Label: int32(e.Label), Split: e.Split}
	}
	return out
}

// pretrainLog is what the trainer leaves for the report: its curves.
type pretrainLog struct {
	Arch     string            `json:"arch"`
	Params   int64             `json:"params"`
	Points   []report.Point    `json:"points"`
	KNN      []report.KNNPoint `json:"knn"`
	Samples  int64             `json:"samples"`
	Seconds  float64           `json:"seconds"`
	Finished time.Time         `json:"finished"`
}

// trainJob is the train stage wired to a trainer, the store and the bus.
type trainJob struct {
	cfg     *config.Config
	s       *services
	log     *slog.Logger
	term    *term
	tr      *trainer.CPU
	data    dataset.Dataset
	start   int // first epoch to train
	monitor func(ctx context.Context) (probe.Score, error)

	mu     sync.Mutex
	curves pretrainLog
}

func newTrainJob(ctx context.Context, cfg *config.Config, s *services, resume bool) (*trainJob, error) {
	d, tr, err := trainerFor(ctx, cfg, s.store)
	if err != nil {
		return nil, err
	}
	j := &trainJob{cfg: cfg, s: s, log: s.log, tr: tr, data: d, start: 1}
	var params int64
	for _, p := range tr.Model().ParamInfos() {
		n := int64(1)
		for _, v := range p.Shape {
			n *= int64(v)
		}
		params += n
	}
	j.curves = pretrainLog{Arch: cfg.Model.Arch, Params: params}
	if resume {
		b, err := s.store.Get(ctx, checkpointKey(cfg, "last"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			j.log.Warn("--resume: no checkpoint yet, starting from scratch", "key", checkpointKey(cfg, "last"))
		case err != nil:
			return nil, err
		default:
			meta, err := tr.Load(b)
			if err != nil {
				return nil, fmt.Errorf("resume from %s: %w", checkpointKey(cfg, "last"), err)
			}
			j.start = meta.Epoch + 1
			if prev, err := s.store.Get(ctx, runKey(cfg, "pretrain.json")); err == nil {
				_ = json.Unmarshal(prev, &j.curves) // curves are informational
			}
			j.log.Info("resumed", "checkpoint", checkpointKey(cfg, "last"), "epoch", meta.Epoch, "step", meta.Step)
		}
	}
	if cfg.Train.KNNEvery > 0 {
		dec, err := newDecoder(cfg, s.store)
		if err != nil {
			return nil, err
		}
		n := cfg.Train.KNNSamples
		bank := tasksOf(cfg.Run.ID, d.Split(cfg.Dataset.TrainSplit), n)
		query := tasksOf(cfg.Run.ID, d.Split(cfg.Dataset.TestSplit), max(1, n/2))
		ec := evalConfig(cfg, d)
		ec.KNN = probe.KNNConfig{K: min(cfg.Train.KNNK, len(bank)), Temperature: cfg.Train.KNNTemperature}
		j.monitor = func(ctx context.Context) (probe.Score, error) {
			b, _, err := evaluate.Extract(ctx, ec, bank, dec.Handle, tr)
			if err != nil {
				return probe.Score{}, err
			}
			q, _, err := evaluate.Extract(ctx, ec, query, dec.Handle, tr)
			if err != nil {
				return probe.Score{}, err
			}
			return probe.KNN(ctx, ec.KNN, b, q)
		}
	}
	return j, nil
}

// evalConfig is how images of d are presented to the frozen encoder.
func evalConfig(cfg *config.Config, d dataset.Dataset) evaluate.Config {
	return evaluate.Config{Size: cfg.Augment.Size, Channels: d.Info.Channels, Classes: len(d.Classes), Workers: 4}
}

// run trains from j.start to the last epoch, consuming view groups from the
// bus, and publishes EpochTrained after each epoch and PretrainDone at the
// end. It returns the key of the last checkpoint.
func (j *trainJob) run(ctx context.Context) (string, error) {
	cfg := j.cfg
	stage, err := train.New(train.Config{
		RunID: cfg.Run.ID, BatchSize: cfg.Train.BatchSize, Views: cfg.Augment.NViews,
		Height: cfg.Augment.Size, Width: cfg.Augment.Size, Channels: j.data.Info.Channels,
		Epochs: cfg.Train.Epochs, StartEpoch: j.start, Log: j.log,
	}, j.tr, train.Hooks{Step: j.onStep, Epoch: j.onEpoch})
	if err != nil {
		return "", err
	}
	if j.start > cfg.Train.Epochs {
		j.log.Info("nothing to train: the checkpoint is past the last epoch", "epoch", j.start-1)
		return checkpointKey(cfg, "last"), j.publish(ctx, messages.Event{Kind: messages.EventPretrainDone, Epoch: uint32(cfg.Train.Epochs), Ref: checkpointKey(cfg, "last")})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := make(chan train.Delivery)
	control := make(chan train.Control, 64)
	if err := j.controlFeed(ctx, control); err != nil {
		return "", err
	}
	// A trainer that died (kill -9, OOM) held up to the train consumer's
	// in-flight window unacknowledged for its AckWait: release them at once. There is one trainer per bus (another
	// one would take, and drop, this one's views anyway).
	if err := j.s.bus.ResetConsumer(ctx, topology(cfg), messages.TopicViews); err != nil {
		return "", err
	}
	router, err := j.s.bus.NewRouter(bus.RouterConfig{Logger: j.log, Registerer: j.s.reg})
	if err != nil {
		return "", err
	}
	sink := bus.Sink("train", messages.TopicViews, messages.UnmarshalViewGroup,
		func(ctx context.Context, d *bus.Delivery[messages.ViewGroup]) error {
			select {
			case in <- train.Delivery{Msg: d.Value, Ack: d.Ack, Nak: d.Nak, Reject: d.DeadLetter}:
				return nil
			case <-ctx.Done():
				return d.Nak()
			}
		})
	if err := router.Add(sink); err != nil {
		return "", err
	}
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	j.mu.Lock()
	started := time.Now()
	j.mu.Unlock()
	err = stage.Run(ctx, in, control)
	j.term.progress("", 0, 0, "")
	cancel()
	if rerr := <-routerDone; err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = rerr
	}
	if err != nil {
		return "", err
	}
	j.log.Info("pretraining done", "epochs", cfg.Train.Epochs, "seconds", time.Since(started).Seconds())
	key := checkpointKey(cfg, "last")
	return key, j.publish(context.WithoutCancel(ctx), messages.Event{Kind: messages.EventPretrainDone, Epoch: uint32(cfg.Train.Epochs), Ref: key})
}

// controlFeed turns EpochStart events into epoch sizes and dead letters of
// this run into dropped samples.
func (j *trainJob) controlFeed(ctx context.Context, control chan<- train.Control) error {
	evs, err := j.s.bus.Events().Subscribe(ctx, j.cfg.Run.ID, messages.EventEpochStart)
	if err != nil {
		return err
	}
	dls, err := j.s.bus.DeadLetters(ctx)
	if err != nil {
		return err
	}
	send := func(c train.Control) bool {
		select {
		case control <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		for ev := range evs {
			if !send(train.Control{Epoch: int(ev.Epoch), EpochSize: int(ev.Count)}) {
				return
			}
		}
	}()
	go func() {
		for dl := range dls {
			run, epoch, id, ok := sampleOf(dl)
			if !ok || run != j.cfg.Run.ID {
				continue
			}
			j.log.Warn("sample dead-lettered", "epoch", epoch, "sample_id", id, "handler", dl.Handler, "reason", dl.Reason)
			if !send(train.Control{Epoch: int(epoch), Dropped: true, SampleID: id}) {
				return
			}
		}
	}()
	return nil
}

// sampleOf identifies the sample of a dead-lettered message of any edge.
func sampleOf(dl bus.DeadLetter) (run string, epoch uint32, id uint64, ok bool) {
	switch dl.SourceTopic {
	case messages.TopicDecodeTasks:
		if t, err := messages.UnmarshalDecodeTask(dl.Payload); err == nil {
			return t.RunID, t.Epoch, t.SampleID, true
		}
	case messages.TopicImages:
		if m, err := messages.UnmarshalImage(dl.Payload); err == nil {
			return m.RunID, m.Epoch, m.SampleID, true
		}
	case messages.TopicViews:
		if m, err := messages.UnmarshalViewGroup(dl.Payload); err == nil {
			return m.RunID, m.Epoch, m.SampleID, true
		}
	}
	return "", 0, 0, false
}

func (j *trainJob) publish(ctx context.Context, ev messages.Event) error {
	ev.RunID = j.cfg.Run.ID
	return j.s.bus.Events().Publish(ctx, ev)
}

func (j *trainJob) onStep(st trainer.Stats, wait time.Duration) {
	rate := float64(st.Samples) / (st.Duration + wait).Seconds()
	j.mu.Lock()
	j.curves.Points = append(j.curves.Points, report.Point{Step: st.Step, Epoch: report.Float(st.Epoch), Loss: report.Float(st.Loss),
		LR: report.Float(st.LR), SamplesPerSec: report.Float(rate), DataWaitSeconds: report.Float(wait.Seconds())})
	j.curves.Samples += int64(st.Samples)
	j.curves.Seconds += (st.Duration + wait).Seconds()
	j.mu.Unlock()
	j.term.progress(fmt.Sprintf("epoch %d/%d", st.Epoch, j.cfg.Train.Epochs), st.Batch+1, st.Batches,
		fmt.Sprintf("loss %.4f lr %.3g %.0f samples/s", st.Loss, st.LR, rate))
	if st.Step%10 == 0 || st.Step == 1 {
		j.log.Info("step", "step", st.Step, "epoch", st.Epoch, "loss", fmt.Sprintf("%.4f", st.Loss), "lr", fmt.Sprintf("%.4g", st.LR),
			"samples_per_sec", fmt.Sprintf("%.1f", rate), "data_wait_seconds", fmt.Sprintf("%.3f", wait.Seconds()),
			"step_seconds", fmt.Sprintf("%.3f", st.Duration.Seconds()))
	}
}

func (j *trainJob) onEpoch(ctx context.Context, epoch int, es train.EpochStats) error {
	cfg := j.cfg
	if j.monitor != nil && (epoch%cfg.Train.KNNEvery == 0 || epoch == cfg.Train.Epochs) {
		start := time.Now()
		sc, err := j.monitor(ctx)
		if err != nil {
			return fmt.Errorf("kNN monitor: %w", err)
		}
		j.log.Info("kNN monitor", "epoch", epoch, "top1", fmt.Sprintf("%.4f", sc.Top1), "top5", fmt.Sprintf("%.4f", sc.Top5),
			"seconds", time.Since(start).Seconds())
		j.mu.Lock()
		j.curves.KNN = append(j.curves.KNN, report.KNNPoint{Epoch: epoch, Top1: report.Float(sc.Top1), Top5: report.Float(sc.Top5)})
		j.mu.Unlock()
	}
	if epoch%cfg.Train.CheckpointEvery == 0 || epoch == cfg.Train.Epochs {
		if err := j.checkpoint(ctx, epoch); err != nil {
			return err
		}
	}
	return j.publish(ctx, messages.Event{Kind: messages.EventEpochTrained, Epoch: uint32(epoch), Count: uint64(es.Samples)})
}

// checkpoint writes epoch-<n> and last, each one complete S3 object (a PUT
// is atomic: a reader never sees half a checkpoint), then the curves.
func (j *trainJob) checkpoint(ctx context.Context, epoch int) error {
	b, err := j.tr.Save(epoch, map[string]string{"run_id": j.cfg.Run.ID})
	if err != nil {
		return err
	}
	for _, name := range []string{fmt.Sprintf("epoch-%d", epoch), "last"} {
		if err := j.s.store.Put(ctx, checkpointKey(j.cfg, name), b, store.PutOptions{ContentType: "application/octet-stream"}); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	j.mu.Lock()
	j.curves.Finished = time.Now().UTC()
	curves, err := json.Marshal(j.curves)
	j.mu.Unlock()
	if err != nil {
		return err
	}
	if err := j.s.store.Put(ctx, runKey(j.cfg, "pretrain.json"), curves, store.PutOptions{ContentType: "application/json"}); err != nil {
		return err
	}
	j.log.Info("checkpoint saved", "key", checkpointKey(j.cfg, "last"), "epoch", epoch, "bytes", len(b))
	return nil
}

// readCurves returns the pretraining curves of the run, if any.
func readCurves(ctx context.Context, cfg *config.Config, s *store.Client) (pretrainLog, error) {
	var p pretrainLog
	b, err := s.Get(ctx, runKey(cfg, "pretrain.json"))
	if err != nil {
		return p, err
	}
	return p, json.NewDecoder(bytes.NewReader(b)).Decode(&p)
}

func runTrain(ctx context.Context, e *env) error {
	s, err := open(ctx, e, "train", true)
	if err != nil {
		return err
	}
	defer s.close()
	j, err := newTrainJob(ctx, e.cfg, s, e.opts.resume)
	if err != nil {
		return err
	}
	j.term = e.term
	key, err := j.run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "pretraining done: checkpoint s3://%s/%s\n", s.store.Bucket(), key)
	return nil
}
