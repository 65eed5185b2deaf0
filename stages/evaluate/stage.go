package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/runs"
	"github.com/supflow/supflow/store"
)

// Engine is a frozen encoder that can take a checkpoint's weights;
// *engine.CPU and *xla/trainer.Engine implement it.
type Engine interface {
	Encoder
	Load(b []byte) (checkpoint.Meta, error)
}

// Store holds checkpoints, curves and reports; *store.Client implements it.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, b []byte, opts store.PutOptions) error
}

// Events carries the run's control events; the bus's Events implements it.
type Events interface {
	Publish(ctx context.Context, ev messages.Event) error
	Wait(ctx context.Context, runID string, kind messages.EventKind, match func(messages.Event) bool) (messages.Event, error)
}

// Config configures the evaluate stage; Scoring says how features are
// extracted and scored.
type Config struct {
	RunID   string
	Dataset string // shown in the report
	Method  string // pretraining objective, shown in the report
	Arch    string
	// Train and Test are the samples the probe fits and scores.
	Train, Test []dataset.Entry
	// Classes are the class names, for the report.
	Classes []string
	// WorkDir receives <run id>/report.json and report.html.
	WorkDir string
	Scoring Scoring
}

// Deps are what the stage runs with. Events may be nil: then no EvalDone
// is published.
type Deps struct {
	Engine Engine
	Load   Loader
	Store  Store
	Events Events
	Log    *slog.Logger
	// Metrics, optional, receives each evaluation's scores.
	Metrics Metrics
}

// Metrics receives an evaluation's scores; *metrics.Evaluator implements
// it (on /metrics).
type Metrics interface {
	Scored(epoch int, linearTop1, linearTop5, knnTop1 float64, at time.Time)
}

// Stage evaluates checkpoints of one run and writes its report.
type Stage struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
}

// New checks cfg and deps.
func New(cfg Config, deps Deps) (*Stage, error) {
	switch {
	case cfg.RunID == "":
		return nil, fmt.Errorf("%w: empty run id", ErrInput)
	case deps.Engine == nil || deps.Load == nil || deps.Store == nil:
		return nil, fmt.Errorf("%w: Engine, Load and Store are required", ErrInput)
	case len(cfg.Test) == 0:
		return nil, fmt.Errorf("%w: no test samples to evaluate on", ErrInput)
	}
	var err error
	if cfg.Scoring, err = cfg.Scoring.withDefaults(); err != nil {
		return nil, err
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stage{cfg: cfg, deps: deps, log: log}, nil
}

// ErrNotFinished: the run's pretraining has not published PretrainDone.
var ErrNotFinished = errors.New("evaluate: pretraining has not finished")

// WaitCheckpoint returns the key of the checkpoint runID's PretrainDone
// event names, waiting for the event until ctx ends when wait is set and
// giving up after a few seconds otherwise (ErrNotFinished). The event comes
// over the bus, where anyone who can publish may forge one, and stays in
// the events stream for days: an event whose key is not a clean key under
// the run's checkpoints is skipped with a warning on log (nil discards),
// never fatal, and the wait goes on for a valid one.
func WaitCheckpoint(ctx context.Context, events Events, runID string, wait bool, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wctx := ctx
	if !wait {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
	}
	valid := func(ev messages.Event) bool {
		if err := dataset.UnderPrefix(ev.Ref, runs.Checkpoints(runID)); err != nil {
			log.Warn("skipping a pretrain-done event whose checkpoint is not one of the run's", "run_id", runID, "error", err)
			return false
		}
		return true
	}
	ev, err := events.Wait(wctx, runID, messages.EventPretrainDone, valid)
	if err != nil {
		if ctx.Err() == nil && !wait {
			return "", fmt.Errorf("%w: run %q has no valid pretrain-done event", ErrNotFinished, runID)
		}
		return "", err
	}
	return ev.Ref, nil
}

// Outcome is what an evaluation produced and where its report went.
type Outcome struct {
	Report     *report.Report
	LocalHTML  string // absolute path of <work_dir>/<run id>/report.html
	ReportKey  string // report.html in the bucket
	LinearTop1 float64
	LinearTop5 float64
	KNNTop1    float64
}

// Run freezes the encoder of checkpoint key, scores it with the linear
// probe and kNN, writes report.json and report.html to the bucket and to
// WorkDir, and publishes EvalDone when there are Events.
func (s *Stage) Run(ctx context.Context, key string) (*Outcome, error) {
	cfg := s.cfg
	started := time.Now().UTC()
	meta, err := loadCheckpoint(ctx, s.deps.Store, s.deps.Engine, cfg.RunID, key)
	if err != nil {
		return nil, err
	}
	train, test := tasks(cfg.RunID, cfg.Train), tasks(cfg.RunID, cfg.Test)
	s.log.Info("evaluating", "checkpoint", key, "epoch", meta.Epoch, "train_samples", len(train), "test_samples", len(test))
	res, err := Evaluate(ctx, cfg.Scoring, train, test, s.deps.Load, s.deps.Engine)
	if err != nil {
		return nil, err
	}
	for _, sk := range res.Skipped {
		s.log.Warn("sample left out of the evaluation", "key", sk.Key, "error", sk.Err)
	}
	rep := s.report(ctx, started, key, meta, res)
	out := &Outcome{Report: rep, ReportKey: runs.Key(cfg.RunID, runs.ReportHTML),
		LinearTop1: res.Linear.Top1, LinearTop5: res.Linear.Top5, KNNTop1: res.KNN.Top1}
	if out.LocalHTML, err = s.write(ctx, rep); err != nil {
		return nil, err
	}
	if s.deps.Metrics != nil {
		s.deps.Metrics.Scored(meta.Epoch, out.LinearTop1, out.LinearTop5, out.KNNTop1, time.Now())
	}
	if s.deps.Events != nil {
		if err := s.deps.Events.Publish(ctx, messages.Event{RunID: cfg.RunID, Kind: messages.EventEvalDone, Ref: out.ReportKey,
			Info: fmt.Sprintf("linear_top1=%.4f knn_top1=%.4f", out.LinearTop1, out.KNNTop1),
			Scores: []messages.Score{
				{Name: messages.ScoreLinearTop1, Value: out.LinearTop1},
				{Name: messages.ScoreLinearTop5, Value: out.LinearTop5},
				{Name: messages.ScoreKNNTop1, Value: out.KNNTop1},
			}}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// loadCheckpoint reads checkpoint key of run runID into eng.
func loadCheckpoint(ctx context.Context, st Store, eng Engine, runID, key string) (checkpoint.Meta, error) {
	b, err := st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return checkpoint.Meta{}, fmt.Errorf("checkpoint %s does not exist: has pretraining of run %s finished?", key, runID)
	}
	if err != nil {
		return checkpoint.Meta{}, err
	}
	meta, err := eng.Load(b)
	if err != nil {
		return checkpoint.Meta{}, fmt.Errorf("checkpoint %s does not fit model.* of the configuration: %w", key, err)
	}
	return meta, nil
}

// EmbedCheckpoint freezes the encoder of checkpoint key of run runID and
// embeds entries as the evaluation does (Embed, with the head's
// projections when head is set); only Engine, Load and Store of deps are
// used.
func EmbedCheckpoint(ctx context.Context, cfg Scoring, runID, key string, entries []dataset.Entry, head bool, deps Deps) (*Embedding, checkpoint.Meta, error) {
	if deps.Engine == nil || deps.Load == nil || deps.Store == nil {
		return nil, checkpoint.Meta{}, fmt.Errorf("%w: Engine, Load and Store are required", ErrInput)
	}
	meta, err := loadCheckpoint(ctx, deps.Store, deps.Engine, runID, key)
	if err != nil {
		return nil, meta, err
	}
	e, err := Embed(ctx, cfg, tasks(runID, entries), deps.Load, deps.Engine, head)
	if err != nil {
		return nil, meta, err
	}
	// A shard member's task names its shard; a user reading keys.json
	// wants the sample's name, which is its entry's Key (tasks numbers
	// the entries in order).
	for i, id := range e.IDs {
		e.Keys[i] = entries[id].Key
	}
	for i := range e.Skipped {
		e.Skipped[i].Key = entries[e.Skipped[i].ID].Key
	}
	return e, meta, nil
}

// report assembles the run's report from the result and the curves the
// train stage left.
func (s *Stage) report(ctx context.Context, started time.Time, key string, meta checkpoint.Meta, res *Result) *report.Report {
	cfg := s.cfg
	rep := &report.Report{RunID: cfg.RunID, Started: started, Finished: time.Now().UTC(), Dataset: cfg.Dataset,
		Method: cfg.Method, Model: report.Model{Arch: cfg.Arch}}
	if c, err := s.curves(ctx); err == nil {
		rep.Model.Params = c.Params
		rep.Pretrain, rep.KNN = c.Points, c.KNN
		if c.Seconds > 0 {
			rep.Throughput = append(rep.Throughput, report.Stage{Name: "train", SamplesPerSec: report.Float(float64(c.Samples) / c.Seconds)})
		}
	}
	lin := res.Linear
	perClass := make([]report.Float, len(lin.PerClass))
	for i, v := range lin.PerClass {
		perClass[i] = report.Float(v)
	}
	rep.Linear = &report.Linear{Top1: report.Float(lin.Top1), Top5: report.Float(lin.Top5), Loss: report.Float(lin.Loss),
		Classes: cfg.Classes, PerClass: perClass, Confusion: lin.Confusion, Protocol: res.Protocol}
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("Checkpoint %s (epoch %d, step %d). Linear probe (protocol %s) on %d train / %d test samples; kNN (k=%d, frozen features) top-1 %.4f.",
			key, meta.Epoch, meta.Step, res.Protocol, res.Train, res.Test, min(cfg.Scoring.KNN.K, res.Train), res.KNN.Top1))
	if len(res.Skipped) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d samples could not be loaded and were left out (see the log).", len(res.Skipped)))
	}
	return rep
}

func (s *Stage) curves(ctx context.Context) (report.Curves, error) {
	var c report.Curves
	b, err := s.deps.Store.Get(ctx, runs.Key(s.cfg.RunID, runs.Curves))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// write stores report.json and report.html in <work_dir>/<run id>/ and
// the bucket, returning the local HTML path.
func (s *Stage) write(ctx context.Context, rep *report.Report) (string, error) {
	f, err := report.Save(filepath.Join(s.cfg.WorkDir, s.cfg.RunID), rep)
	if err != nil {
		return "", err
	}
	for _, o := range []struct {
		name, contentType string
		b                 []byte
	}{{runs.ReportJSON, "application/json", f.JSON}, {runs.ReportHTML, "text/html; charset=utf-8", f.HTML}} {
		if err := s.deps.Store.Put(ctx, runs.Key(s.cfg.RunID, o.name), o.b, store.PutOptions{ContentType: o.contentType}); err != nil {
			return "", err
		}
	}
	return f.HTMLPath, nil
}

// tasks turns manifest entries into the decode tasks of an evaluation (no
// epoch; the sample id is the entry's position).
func tasks(runID string, entries []dataset.Entry) []messages.DecodeTask {
	out := make([]messages.DecodeTask, len(entries))
	for i, e := range entries {
		out[i] = e.Task(runID, 0, uint64(i))
	}
	return out
}

// Monitor is the train stage's kNN monitor: features of a bank and a query
// slice, scored by weighted kNN.
type Monitor struct {
	cfg         Scoring
	bank, query []messages.DecodeTask
	load        Loader
	enc         Encoder
}

// NewMonitor scores enc's features of query against those of bank.
func NewMonitor(cfg Scoring, runID string, bank, query []dataset.Entry, load Loader, enc Encoder) (*Monitor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(bank) == 0 || len(query) == 0 {
		return nil, fmt.Errorf("%w: kNN monitor: %d bank and %d query samples", ErrInput, len(bank), len(query))
	}
	cfg.KNN.K = min(cfg.KNN.K, len(bank))
	return &Monitor{cfg: cfg, bank: tasks(runID, bank), query: tasks(runID, query), load: load, enc: enc}, nil
}

// Score extracts both slices' features with the current weights and
// scores the query.
func (m *Monitor) Score(ctx context.Context) (probe.Score, error) {
	b, _, err := Extract(ctx, m.cfg, m.bank, m.load, m.enc)
	if err != nil {
		return probe.Score{}, err
	}
	q, _, err := Extract(ctx, m.cfg, m.query, m.load, m.enc)
	if err != nil {
		return probe.Score{}, err
	}
	return probe.KNN(ctx, m.cfg.KNN, b, q)
}
