package probe

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// evalRows bounds the logits held at once while scoring.
const evalRows = 4096

// Linear is a trained linear classifier: logits = W·x + B for a raw feature
// row x. It is safe for concurrent use once trained, as long as nobody
// modifies its fields.
type Linear struct {
	// W holds Classes rows of Dim weights, row-major.
	W []float32
	// B holds one bias per class.
	B       []float32
	Dim     int
	Classes int
}

// LinearScore is the Score of a Linear plus its mean cross-entropy.
type LinearScore struct {
	Score
	Loss float64 `json:"loss"`
}

// Train fits a Linear on train with softmax cross-entropy and SGD with
// momentum, starting from zero weights. It checks ctx before every step and
// returns ctx's error, wrapped, once it ends.
func Train(ctx context.Context, cfg Config, train Set) (*Linear, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := train.validate("train"); err != nil {
		return nil, err
	}
	d := train.Dim
	var mean, inv []float32
	if cfg.Standardize {
		mean, inv = moments(train)
	}
	l, err := fit(ctx, cfg, d, train.Classes, train.Labels, func(_ context.Context, _ int, rows []int, xb []float32) error {
		for i, r := range rows {
			dst, src := xb[i*d:(i+1)*d], train.X[r*d:(r+1)*d]
			if mean != nil {
				for j, v := range src {
					dst[j] = (v - mean[j]) * inv[j]
				}
			} else {
				copy(dst, src)
			}
		}
		return nil
	})
	if err != nil || mean == nil {
		return l, err
	}
	// W·((x-μ)⊙s) + b = (W⊙s)·x + (b - (W⊙s)·μ).
	for c := range l.Classes {
		row := l.W[c*d : (c+1)*d]
		var shift float64
		for j := range row {
			row[j] *= inv[j]
			shift += float64(row[j]) * float64(mean[j])
		}
		l.B[c] -= float32(shift)
	}
	return l, nil
}

// Batches writes the features of a step's training rows (indices into the
// labels TrainOn was given) into dst, len(rows) rows of the Linear's
// width, for the 0-based epoch: a fresh augmented view of each sample per
// epoch in SupContrast's linear evaluation.
type Batches func(ctx context.Context, epoch int, rows []int, dst []float32) error

// TrainOn fits a Linear as Train does, on len(labels) training rows of dim
// features that batch supplies step by step instead of a fixed Set.
// Features are used as given: cfg.Standardize is refused, since the
// statistics of features that change every epoch are not known up front
// (SupContrast's main_linear.py does not standardise either).
func TrainOn(ctx context.Context, cfg Config, dim, classes int, labels []int, batch Batches) (*Linear, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Standardize:
		return nil, fmt.Errorf("%w: TrainOn cannot standardise features it has not seen", ErrInvalidInput)
	case dim <= 0 || classes < 2 || len(labels) == 0 || batch == nil:
		return nil, fmt.Errorf("%w: dim %d, %d classes, %d rows", ErrInvalidInput, dim, classes, len(labels))
	}
	for i, l := range labels {
		if l < 0 || l >= classes {
			return nil, fmt.Errorf("%w: row %d has label %d, want [0, %d)", ErrInvalidInput, i, l, classes)
		}
	}
	return fit(ctx, cfg, dim, classes, labels, batch)
}

// fit runs the SGD epochs of Train and TrainOn, fill supplying each
// step's rows.
func fit(ctx context.Context, cfg Config, d, k int, trainLabels []int, fill Batches) (*Linear, error) {
	n := len(trainLabels)
	bs := min(cfg.BatchSize, n)
	steps := (n + bs - 1) / bs
	var (
		w, gw, vw = make([]float32, k*d), make([]float32, k*d), make([]float32, k*d)
		b, gb, vb = make([]float32, k), make([]float32, k), make([]float32, k)
		xb        = make([]float32, bs*d)
		z         = make([]float32, bs*k)
		perm      = make([]int, n)
		labels    = make([]int, bs)
	)
	for i := range perm {
		perm[i] = i
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	for epoch := range cfg.Epochs {
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		var lossSum float64
		var correct int
		var lr float64
		for s := range steps {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("probe: training stopped in epoch %d: %w", epoch+1, err)
			}
			rows := perm[s*bs : min(n, (s+1)*bs)]
			m := len(rows)
			if err := fill(ctx, epoch, rows, xb[:m*d]); err != nil {
				return nil, err
			}
			for i, r := range rows {
				labels[i] = trainLabels[r]
			}
			x := general(m, d, xb)
			logits := general(m, k, z)
			forward(x, w, b, k, logits)
			l, c := softmaxGrad(logits.Data, labels[:m], k)
			lossSum += l * float64(m)
			correct += c
			// gw = dZᵀ·X, gb = column sums of dZ (dZ already divided by m).
			blas32.Gemm(blas.Trans, blas.NoTrans, 1, logits, x, 0, general(k, d, gw))
			clear(gb)
			for i := range m {
				for j, g := range logits.Data[i*k : (i+1)*k] {
					gb[j] += g
				}
			}
			lr = cfg.lr(epoch, s, steps)
			sgd(w, gw, vw, lr, cfg.Momentum, cfg.WeightDecay)
			sgd(b, gb, vb, lr, cfg.Momentum, cfg.WeightDecay)
		}
		loss := lossSum / float64(n)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("%w: loss %v in epoch %d (lr %v)", ErrDiverged, loss, epoch+1, cfg.LR)
		}
		if cfg.Progress != nil {
			cfg.Progress(EpochStats{Epoch: epoch + 1, Epochs: cfg.Epochs, Loss: loss,
				Accuracy: float64(correct) / float64(n), LR: lr})
		}
	}
	return &Linear{W: w, B: b, Dim: d, Classes: k}, nil
}

// Evaluate scores l on test, evalRows rows at a time; it stops with ctx's
// error, wrapped, once ctx ends.
func (l *Linear) Evaluate(ctx context.Context, test Set) (LinearScore, error) {
	if err := l.check(); err != nil {
		return LinearScore{}, err
	}
	if err := test.validate("test"); err != nil {
		return LinearScore{}, err
	}
	if test.Dim != l.Dim || test.Classes != l.Classes {
		return LinearScore{}, fmt.Errorf("%w: test set has dim %d and %d classes, classifier %d and %d",
			ErrInvalidInput, test.Dim, test.Classes, l.Dim, l.Classes)
	}
	n, d, k := test.Len(), test.Dim, test.Classes
	t := newTally(k)
	z := make([]float32, min(n, evalRows)*k)
	var lossSum float64
	for lo := 0; lo < n; lo += evalRows {
		if err := ctx.Err(); err != nil {
			return LinearScore{}, fmt.Errorf("probe: evaluation stopped: %w", err)
		}
		hi := min(n, lo+evalRows)
		logits := general(hi-lo, k, z)
		forward(general(hi-lo, d, test.X[lo*d:hi*d]), l.W, l.B, k, logits)
		t.add(logits.Data, test.Labels[lo:hi])
		for i, y := range test.Labels[lo:hi] {
			lossSum += crossEntropy(logits.Data[i*k:(i+1)*k], y)
		}
	}
	return LinearScore{Score: t.score(), Loss: lossSum / float64(n)}, nil
}

func (l *Linear) check() error {
	if l == nil || l.Dim <= 0 || l.Classes < 2 || len(l.W) != l.Dim*l.Classes || len(l.B) != l.Classes {
		return fmt.Errorf("%w: malformed linear classifier", ErrInvalidInput)
	}
	return nil
}

// general views data as a rows×cols row-major matrix.
func general(rows, cols int, data []float32) blas32.General {
	return blas32.General{Rows: rows, Cols: cols, Stride: cols, Data: data[:rows*cols]}
}

// forward sets out = x·wᵀ + b for w of k rows.
func forward(x blas32.General, w, b []float32, k int, out blas32.General) {
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, x, general(k, x.Cols, w), 0, out)
	for i := range out.Rows {
		row := out.Data[i*k : (i+1)*k]
		for j := range row {
			row[j] += b[j]
		}
	}
}

// softmaxGrad replaces z ([len(labels), k] logits) with the gradient of the
// mean cross-entropy, (softmax - onehot)/m, and returns the mean loss and the
// number of rows whose argmax is the label.
func softmaxGrad(z []float32, labels []int, k int) (float64, int) {
	m := len(labels)
	var loss float64
	correct := 0
	for i, y := range labels {
		row := z[i*k : (i+1)*k]
		if argmax(row) == y {
			correct++
		}
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		target := float64(row[y] - mx)
		var sum float64
		for j, v := range row {
			e := math.Exp(float64(v - mx))
			row[j] = float32(e)
			sum += e
		}
		loss += math.Log(sum) - target
		for j := range row {
			row[j] = float32(float64(row[j])/sum) / float32(m)
		}
		row[y] -= 1 / float32(m)
	}
	return loss / float64(m), correct
}

// crossEntropy is -log softmax(row)[y], computed stably.
func crossEntropy(row []float32, y int) float64 {
	mx := row[0]
	for _, v := range row {
		mx = max(mx, v)
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v - mx))
	}
	return math.Log(sum) - float64(row[y]-mx)
}

// sgd applies torch.optim.SGD's update: v = μv + g + λp; p -= lr·v.
func sgd(p, g, v []float32, lr, momentum, decay float64) {
	mu, wd, eta := float32(momentum), float32(decay), float32(lr)
	for i := range p {
		v[i] = mu*v[i] + g[i] + wd*p[i]
		p[i] -= eta * v[i]
	}
}

// moments returns each feature's training mean and inverse standard
// deviation; constant features get an inverse of 0, so they drop out.
func moments(s Set) (mean, inv []float32) {
	n, d := s.Len(), s.Dim
	sum, sq := make([]float64, d), make([]float64, d)
	for r := range n {
		for j, v := range s.X[r*d : (r+1)*d] {
			sum[j] += float64(v)
		}
	}
	mean, inv = make([]float32, d), make([]float32, d)
	for j := range d {
		mean[j] = float32(sum[j] / float64(n))
	}
	for r := range n {
		for j, v := range s.X[r*d : (r+1)*d] {
			dv := float64(v) - float64(mean[j])
			sq[j] += dv * dv
		}
	}
	for j := range d {
		if sd := math.Sqrt(sq[j] / float64(n)); sd > 1e-12 {
			inv[j] = float32(1 / sd)
		}
	}
	return mean, inv
}
