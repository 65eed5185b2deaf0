package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Trainer holds the train stage's metrics; stages/train reports to it
// through its Metrics interface. Every series carries the run_id label.
// Rates come from the counters (rate(supflow_train_samples_total[1m]));
// the gauges hold the last step's values, as the log line does.
type Trainer struct {
	loss, lr, samplesPerSec, epoch, knnTop1, knnTop5 prometheus.Gauge
	checkpointTime, checkpointEpoch                  prometheus.Gauge
	steps, samples, stepSeconds, waitSeconds         prometheus.Counter
}

// NewTrainer registers the trainer's metrics of run runID on reg.
func NewTrainer(reg prometheus.Registerer, runID string) (*Trainer, error) {
	l := prometheus.Labels{"run_id": runID}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: l})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l})
	}
	t := &Trainer{
		loss:            g("supflow_train_loss", "Mean loss of the last optimizer step's batch."),
		lr:              g("supflow_train_learning_rate", "Learning rate of the last optimizer step."),
		samplesPerSec:   g("supflow_train_samples_per_second", "Samples per second of the last step, data wait included."),
		epoch:           g("supflow_train_epoch", "Epoch of the last optimizer step (1-based)."),
		knnTop1:         g("supflow_train_knn_top1", "Top-1 accuracy of the last kNN monitor score (0..1)."),
		knnTop5:         g("supflow_train_knn_top5", "Top-5 accuracy of the last kNN monitor score (0..1)."),
		checkpointTime:  g("supflow_train_checkpoint_timestamp_seconds", "Unix time the last checkpoint was written; its age is time() minus this."),
		checkpointEpoch: g("supflow_train_checkpoint_epoch", "Epoch of the last checkpoint written."),
		steps:           c("supflow_train_steps_total", "Optimizer steps taken by this process."),
		samples:         c("supflow_train_samples_total", "Samples stepped by this process."),
		stepSeconds:     c("supflow_train_step_seconds_total", "Seconds spent in optimizer steps."),
		waitSeconds:     c("supflow_train_data_wait_seconds_total", "Seconds the trainer waited for a batch's data before its step."),
	}
	for _, col := range []prometheus.Collector{t.loss, t.lr, t.samplesPerSec, t.epoch, t.knnTop1, t.knnTop5,
		t.checkpointTime, t.checkpointEpoch, t.steps, t.samples, t.stepSeconds, t.waitSeconds} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Step records one optimizer step.
func (t *Trainer) Step(epoch, samples int, loss, lr float64, step, wait time.Duration) {
	t.loss.Set(loss)
	t.lr.Set(lr)
	t.epoch.Set(float64(epoch))
	if d := (step + wait).Seconds(); d > 0 {
		t.samplesPerSec.Set(float64(samples) / d)
	}
	t.steps.Inc()
	t.samples.Add(float64(samples))
	t.stepSeconds.Add(step.Seconds())
	t.waitSeconds.Add(wait.Seconds())
}

// KNN records a kNN monitor score.
func (t *Trainer) KNN(top1, top5 float64) {
	t.knnTop1.Set(top1)
	t.knnTop5.Set(top5)
}

// Checkpoint records a checkpoint of epoch written at at.
func (t *Trainer) Checkpoint(epoch int, at time.Time) {
	t.checkpointTime.Set(float64(at.UnixNano()) / 1e9)
	t.checkpointEpoch.Set(float64(epoch))
}

// Evaluator holds the evaluate stage's metrics: the scores of the last
// evaluation, each series labelled run_id.
type Evaluator struct {
	accuracy         *prometheus.GaugeVec
	time, checkpoint prometheus.Gauge
}

// NewEvaluator registers the evaluator's metrics of run runID on reg.
func NewEvaluator(reg prometheus.Registerer, runID string) (*Evaluator, error) {
	l := prometheus.Labels{"run_id": runID}
	e := &Evaluator{
		accuracy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "supflow_eval_accuracy", ConstLabels: l,
			Help: "Accuracy (0..1) of the last evaluation on the test split by classifier (linear, knn) and metric (top1, top5)."},
			[]string{"classifier", "metric"}),
		time: prometheus.NewGauge(prometheus.GaugeOpts{Name: "supflow_eval_timestamp_seconds", ConstLabels: l,
			Help: "Unix time the last evaluation finished."}),
		checkpoint: prometheus.NewGauge(prometheus.GaugeOpts{Name: "supflow_eval_checkpoint_epoch", ConstLabels: l,
			Help: "Epoch of the checkpoint the last evaluation scored."}),
	}
	for _, col := range []prometheus.Collector{e.accuracy, e.time, e.checkpoint} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Scored records an evaluation of the checkpoint of epoch, finished at at.
func (e *Evaluator) Scored(epoch int, linearTop1, linearTop5, knnTop1 float64, at time.Time) {
	e.accuracy.WithLabelValues("linear", "top1").Set(linearTop1)
	e.accuracy.WithLabelValues("linear", "top5").Set(linearTop5)
	e.accuracy.WithLabelValues("knn", "top1").Set(knnTop1)
	e.time.Set(float64(at.UnixNano()) / 1e9)
	e.checkpoint.Set(float64(epoch))
}
