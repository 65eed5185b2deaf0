package probe

import (
	"cmp"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/supflow/supflow/config/field"
)

// clusters draws n rows of dim d around classes random centres; spread is
// the noise scale relative to the unit spread of the centres.
func clusters(seed uint64, n, d, classes int, spread float64) Set {
	rng := rand.New(rand.NewPCG(seed, 1))
	centres := make([]float64, classes*d)
	for i := range centres {
		centres[i] = rng.NormFloat64()
	}
	s := Set{X: make([]float32, n*d), Labels: make([]int, n), Dim: d, Classes: classes}
	for i := range n {
		c := rng.IntN(classes)
		s.Labels[i] = c
		for j := range d {
			s.X[i*d+j] = float32(centres[c*d+j] + spread*rng.NormFloat64())
		}
	}
	return s
}

// split cuts s into its first k rows and the rest.
func split(s Set, k int) (Set, Set) {
	a, b := s, s
	a.X, a.Labels = s.X[:k*s.Dim], s.Labels[:k]
	b.X, b.Labels = s.X[k*s.Dim:], s.Labels[k:]
	return a, b
}

func TestTrainSeparable(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"cosine", Config{Epochs: 10, Seed: 1}},
		{"step", Config{Epochs: 10, Schedule: Step, Seed: 2}},
		{"standardized", Config{Epochs: 10, Standardize: true, Seed: 3}},
		{"small batches with decay", Config{Epochs: 5, BatchSize: 16, WeightDecay: 1e-4, Seed: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			train, test := split(clusters(7, 3000, 32, 10, 0.3), 2000)
			l, err := Train(context.Background(), tt.cfg, train)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Evaluate(context.Background(), test)
			if err != nil {
				t.Fatal(err)
			}
			if got.Top1 < 0.99 {
				t.Errorf("top-1 %.3f on separable clusters, want >= 0.99", got.Top1)
			}
			if got.Top5 < got.Top1 {
				t.Errorf("top-5 %.3f < top-1 %.3f", got.Top5, got.Top1)
			}
			if got.Loss <= 0 || got.Loss > 0.1 {
				t.Errorf("loss %.4f, want small and positive", got.Loss)
			}
		})
	}
}

func TestTrainRandomLabelsIsChance(t *testing.T) {
	s := clusters(8, 6000, 16, 10, 1)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range s.Labels {
		s.Labels[i] = rng.IntN(10)
	}
	train, test := split(s, 4000)
	l, err := Train(context.Background(), Config{Epochs: 5, Seed: 1}, train)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Evaluate(context.Background(), test)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.Top1-0.1) > 0.04 {
		t.Errorf("top-1 %.3f on random labels, want about 0.1", got.Top1)
	}
}

func TestTrainDeterministic(t *testing.T) {
	train := clusters(10, 500, 8, 3, 0.5)
	var stats []EpochStats
	cfg := Config{Epochs: 3, BatchSize: 32, Seed: 5, Progress: func(s EpochStats) { stats = append(stats, s) }}
	a, err := Train(context.Background(), cfg, train)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Progress = nil
	b, err := Train(context.Background(), cfg, train)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.W, b.W) || !slices.Equal(a.B, b.B) {
		t.Error("equal seeds gave different classifiers")
	}
	if len(stats) != 3 || stats[2].Epoch != 3 || stats[2].Epochs != 3 {
		t.Fatalf("progress %+v, want epochs 1..3 of 3", stats)
	}
	if stats[2].Loss >= stats[0].Loss {
		t.Errorf("loss went %v -> %v, want a decrease", stats[0].Loss, stats[2].Loss)
	}
	if !(stats[2].LR < stats[0].LR) {
		t.Errorf("cosine lr went %v -> %v, want a decrease", stats[0].LR, stats[2].LR)
	}
}

func TestStandardizeFoldsIntoWeights(t *testing.T) {
	// Features on wildly different scales and offsets: the folded classifier
	// must score raw rows as the standardized one scored scaled rows.
	s := clusters(11, 1500, 6, 4, 0.2)
	for i := range s.X {
		s.X[i] = s.X[i]*float32(1+1000*(i%2)) + 50
	}
	train, test := split(s, 1000)
	l, err := Train(context.Background(), Config{Epochs: 10, Standardize: true, Seed: 1}, train)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Evaluate(context.Background(), test)
	if err != nil {
		t.Fatal(err)
	}
	if got.Top1 < 0.99 {
		t.Errorf("top-1 %.3f with standardization, want >= 0.99", got.Top1)
	}
}

func TestTrainStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{Epochs: 50, Progress: func(s EpochStats) {
		if s.Epoch == 2 {
			cancel()
		}
	}}
	_, err := Train(ctx, cfg, clusters(1, 200, 4, 2, 1))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestTrainDiverges(t *testing.T) {
	// Huge features and rate overflow float32 logits to ±Inf.
	s := clusters(2, 200, 4, 3, 1)
	for i := range s.X {
		s.X[i] *= 1e19
	}
	_, err := Train(context.Background(), Config{Epochs: 20, LR: maxLR}, s)
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("err %v, want ErrDiverged", err)
	}
}

func TestLRSchedule(t *testing.T) {
	tests := []struct {
		name         string
		cfg          Config
		epoch, s, of int
		want         float64
	}{
		{"cosine start", Config{Epochs: 10, LR: 1}, 0, 0, 4, 1},
		{"cosine middle", Config{Epochs: 10, LR: 1}, 5, 0, 4, 0.5},
		{"cosine floor", Config{Epochs: 10, LR: 1, MinLR: 0.2}, 5, 0, 4, 0.6},
		{"step before", Config{Epochs: 100, LR: 1, Schedule: Step}, 59, 3, 4, 1},
		{"step first", Config{Epochs: 100, LR: 1, Schedule: Step}, 60, 0, 4, 0.1},
		{"step last", Config{Epochs: 100, LR: 1, Schedule: Step}, 99, 0, 4, 0.001},
		{"step custom", Config{Epochs: 10, LR: 1, Schedule: Step, Milestones: []int{2}, Gamma: 0.5}, 9, 0, 4, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.setDefaults()
			if got := cfg.lr(tt.epoch, tt.s, tt.of); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("lr = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestConfigValidate: each bad value is one error naming its key (the
// evaluate section's key where it is one), from Validate on a defaulted
// config and from Train.
func TestConfigValidate(t *testing.T) {
	set := clusters(3, 40, 4, 3, 1)
	tests := []struct {
		name string
		cfg  Config // defaults applied before Validate
		key  string // "" when valid
	}{
		{"zero value", Config{}, ""},
		{"one epoch step", Config{Epochs: 1, Schedule: Step}, ""},
		{"negative epochs", Config{Epochs: -1}, "epochs"},
		{"too many epochs", Config{Epochs: 10001}, "epochs"},
		{"negative batch", Config{BatchSize: -3}, "batch_size"},
		{"nan lr", Config{LR: math.NaN()}, "lr"},
		{"momentum one", Config{Momentum: 1}, "momentum"},
		{"negative momentum", Config{Momentum: -0.5}, "momentum"},
		{"negative decay", Config{WeightDecay: -1}, "weight_decay"},
		{"unknown schedule", Config{Schedule: "linear"}, "schedule"},
		{"min lr above lr", Config{LR: 0.1, MinLR: 0.2}, "min_lr"},
		{"gamma above one", Config{Gamma: 2}, "gamma"},
		{"milestone past end", Config{Epochs: 10, Schedule: Step, Milestones: []int{5, 10}}, "milestones"},
		{"milestones unsorted", Config{Epochs: 10, Schedule: Step, Milestones: []int{5, 3}}, "milestones"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.setDefaults()
			err := c.Validate()
			cfg := tt.cfg
			cfg.Epochs = cmp.Or(cfg.Epochs, 2) // keep Train short
			_, trainErr := Train(context.Background(), cfg, set)
			if tt.key == "" {
				if err != nil || trainErr != nil {
					t.Fatalf("Validate: %v, Train: %v", err, trainErr)
				}
				return
			}
			for _, err := range []error{err, trainErr} {
				if fe := field.List(err); len(fe) != 1 || fe[0].Key != tt.key || !errors.Is(err, ErrInvalidConfig) {
					t.Errorf("err = %v, want one ErrInvalidConfig naming %s", err, tt.key)
				}
			}
		})
	}
	// Strict: the zero value's keys are refused; DefaultConfig is valid.
	var keys []string
	for _, e := range field.List(Config{}.Validate()) {
		keys = append(keys, e.Key)
	}
	if want := []string{"epochs", "batch_size", "lr", "momentum", "schedule"}; !slices.Equal(keys, want) {
		t.Errorf("zero Config: keys %v, want %v", keys, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

// TestKNNConfigValidate: each bad value is one error naming its key (the
// train section's knn_* keys), from Validate on a defaulted config and from
// KNN; the zero value is refused by Validate, which checks as given, and
// works in KNN.
func TestKNNConfigValidate(t *testing.T) {
	set := clusters(2, 250, 3, 2, 1)
	tests := []struct {
		name string
		cfg  KNNConfig // defaults applied before Validate
		key  string    // "" when valid
	}{
		{"zero value", KNNConfig{}, ""},
		{"k 1", KNNConfig{K: 1, Temperature: 0.07}, ""},
		{"negative k", KNNConfig{K: -1}, "knn_k"},
		{"k above 10000", KNNConfig{K: 10001}, "knn_k"},
		{"negative temperature", KNNConfig{Temperature: -0.1}, "knn_temperature"},
		{"infinite temperature", KNNConfig{Temperature: math.Inf(1)}, "knn_temperature"},
		{"negative chunk", KNNConfig{ChunkRows: -1}, "chunk_rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.SetDefaults()
			err := c.Validate()
			_, knnErr := KNN(context.Background(), tt.cfg, set, set)
			if tt.key == "" {
				if err != nil || knnErr != nil {
					t.Fatalf("Validate: %v, KNN: %v", err, knnErr)
				}
				return
			}
			for _, err := range []error{err, knnErr} {
				if fe := field.List(err); len(fe) != 1 || fe[0].Key != tt.key || !errors.Is(err, ErrInvalidConfig) {
					t.Errorf("err = %v, want one ErrInvalidConfig naming %s", err, tt.key)
				}
			}
		})
	}
	if fe := field.List(KNNConfig{}.Validate()); len(fe) != 2 {
		t.Errorf("zero KNNConfig: %v", fe)
	}
	if err := DefaultKNNConfig().Validate(); err != nil {
		t.Errorf("DefaultKNNConfig: %v", err)
	}
}

func TestBadInputs(t *testing.T) {
	good := clusters(3, 20, 4, 3, 1)
	trained, err := Train(context.Background(), Config{Epochs: 1}, good)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mutate := func(f func(*Set)) Set {
		s := good
		s.X, s.Labels = slices.Clone(good.X), slices.Clone(good.Labels)
		f(&s)
		return s
	}
	bad := map[string]Set{
		"zero dim":         mutate(func(s *Set) { s.Dim = 0 }),
		"one class":        mutate(func(s *Set) { s.Classes = 1 }),
		"empty":            {Dim: 4, Classes: 3},
		"short features":   mutate(func(s *Set) { s.X = s.X[:len(s.X)-1] }),
		"too many labels":  mutate(func(s *Set) { s.Labels = append(s.Labels, 0) }),
		"label too large":  mutate(func(s *Set) { s.Labels[5] = 3 }),
		"negative label":   mutate(func(s *Set) { s.Labels[0] = -1 }),
		"nan feature":      mutate(func(s *Set) { s.X[7] = float32(math.NaN()) }),
		"inf feature":      mutate(func(s *Set) { s.X[7] = float32(math.Inf(-1)) }),
		"dim mismatch":     mutate(func(s *Set) { s.Dim, s.X = 2, s.X[:40] }),
		"classes mismatch": mutate(func(s *Set) { s.Classes = 5 }),
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			_, trainErr := Train(ctx, Config{Epochs: 1}, s)
			_, evalErr := trained.Evaluate(ctx, s)
			_, knnErr := KNN(ctx, KNNConfig{K: 5}, good, s)
			for what, err := range map[string]error{"Evaluate": evalErr, "KNN": knnErr} {
				if !errors.Is(err, ErrInvalidInput) {
					t.Errorf("%s: err %v, want ErrInvalidInput", what, err)
				}
			}
			// A lone set with another dim or class count is valid to train on.
			if name != "dim mismatch" && name != "classes mismatch" && !errors.Is(trainErr, ErrInvalidInput) {
				t.Errorf("Train: err %v, want ErrInvalidInput", trainErr)
			}
		})
	}
	if _, err := KNN(ctx, KNNConfig{K: 21}, good, good); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("KNN with k > N: err %v, want ErrInvalidInput", err)
	}
	if _, err := KNN(ctx, KNNConfig{}, good, good); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("KNN with default k=200 > N=20: err %v, want ErrInvalidInput", err)
	}
	if _, err := (&Linear{}).Evaluate(ctx, good); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("zero Linear: err %v, want ErrInvalidInput", err)
	}
}

func TestEvaluateScores(t *testing.T) {
	// Three classes, four rows; the last row ties classes 0 and 2.
	scores := []float32{
		0.9, 0.05, 0.05, // label 0: right
		0.1, 0.2, 0.7, // label 1: predicted 2, true class ranks 2nd
		0.1, 0.1, 0.8, // label 2: right
		0.4, 0.2, 0.4, // label 2: tie, goes to class 0; true class ranks 2nd
	}
	labels := []int{0, 1, 2, 2}
	got, err := Evaluate(scores, labels, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := Score{
		N: 4, Top1: 0.5, Top5: 1, TopK: 3,
		PerClass:  []float64{1, 0, 0.5},
		Support:   []int{1, 1, 2},
		Confusion: [][]int{{1, 0, 0}, {0, 0, 1}, {1, 0, 1}},
	}
	if got.N != want.N || got.Top1 != want.Top1 || got.Top5 != want.Top5 || got.TopK != want.TopK ||
		!slices.Equal(got.PerClass, want.PerClass) || !slices.Equal(got.Support, want.Support) {
		t.Errorf("Evaluate = %+v, want %+v", got, want)
	}
	total := 0
	for i, row := range got.Confusion {
		if !slices.Equal(row, want.Confusion[i]) {
			t.Errorf("confusion row %d = %v, want %v", i, row, want.Confusion[i])
		}
		for _, v := range row {
			total += v
		}
	}
	if total != got.N {
		t.Errorf("confusion sums to %d, want N=%d", total, got.N)
	}
	for k, want := range map[int]float64{1: 0.5, 2: 1, 3: 1} {
		if got, err := TopK(scores, labels, 3, k); err != nil || got != want {
			t.Errorf("TopK(k=%d) = %v, %v; want %v", k, got, err, want)
		}
	}
	for _, k := range []int{0, 4} {
		if _, err := TopK(scores, labels, 3, k); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("TopK(k=%d): err %v, want ErrInvalidInput", k, err)
		}
	}
	if _, err := Evaluate(scores[:11], labels, 3); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Evaluate with a short score matrix: err %v, want ErrInvalidInput", err)
	}
}

func TestKNNClusters(t *testing.T) {
	train, test := split(clusters(12, 1500, 16, 10, 0.3), 1000)
	var first Score
	for i, chunk := range []int{0, 1, 7, 500} {
		got, err := KNN(context.Background(), KNNConfig{K: 20, ChunkRows: chunk}, train, test)
		if err != nil {
			t.Fatal(err)
		}
		if got.Top1 < 0.99 || got.Top5 < got.Top1 || got.N != test.Len() {
			t.Errorf("chunk %d: top-1 %.3f top-5 %.3f n %d", chunk, got.Top1, got.Top5, got.N)
		}
		if i == 0 {
			first = got
		} else if !slices.EqualFunc(got.Confusion, first.Confusion, slices.Equal) {
			t.Errorf("chunk %d changed the confusion matrix", chunk)
		}
	}
}

// TestKNNMatchesReference checks the chunked, heap-based kNN against a
// direct transcription of the monitor: normalise, sort all similarities,
// sum exp(sim/T) of the top k per class.
func TestKNNMatchesReference(t *testing.T) {
	train, test := split(clusters(13, 700, 8, 5, 1.5), 500)
	cfg := KNNConfig{K: 25, Temperature: 0.07, ChunkRows: 30}
	got, err := KNN(context.Background(), cfg, train, test)
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s Set, i int) []float64 {
		row := make([]float64, s.Dim)
		var sq float64
		for j := range row {
			row[j] = float64(s.X[i*s.Dim+j])
			sq += row[j] * row[j]
		}
		for j := range row {
			row[j] /= math.Sqrt(sq)
		}
		return row
	}
	scores := make([]float32, 0, test.Len()*test.Classes)
	for i := range test.Len() {
		q := norm(test, i)
		sims := make([]float64, train.Len())
		idx := make([]int, train.Len())
		for j := range sims {
			r := norm(train, j)
			for c := range q {
				sims[j] += q[c] * r[c]
			}
			idx[j] = j
		}
		sort.Slice(idx, func(a, b int) bool { return sims[idx[a]] > sims[idx[b]] })
		votes := make([]float32, test.Classes)
		for _, j := range idx[:cfg.K] {
			votes[train.Labels[j]] += float32(math.Exp(sims[j] / cfg.Temperature))
		}
		scores = append(scores, votes...)
	}
	want, err := Evaluate(scores, test.Labels, test.Classes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got.Confusion, want.Confusion, slices.Equal) {
		t.Errorf("KNN confusion %v, reference %v", got.Confusion, want.Confusion)
	}
	if got.Top1 != want.Top1 || got.Top5 != want.Top5 {
		t.Errorf("KNN top-1/top-5 %.4f/%.4f, reference %.4f/%.4f", got.Top1, got.Top5, want.Top1, want.Top5)
	}
	if want.Top1 > 0.97 || want.Top1 < 0.4 {
		t.Errorf("reference top-1 %.3f: clusters too easy or too hard to tell implementations apart", want.Top1)
	}
}

func TestKNNStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := clusters(14, 50, 4, 2, 1)
	if _, err := KNN(ctx, KNNConfig{K: 5}, s, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// TestTrainOnFixedBatchesIsTrain: TrainOn fed a fixed set's rows is Train
// on that set, weight for weight; it sees every epoch; it refuses
// standardisation and bad labels, and a batch error stops it.
func TestTrainOnFixedBatchesIsTrain(t *testing.T) {
	train := clusters(10, 300, 8, 3, 0.5)
	cfg := Config{Epochs: 3, BatchSize: 32, Seed: 5}
	want, err := Train(context.Background(), cfg, train)
	if err != nil {
		t.Fatal(err)
	}
	epochs := map[int]bool{}
	got, err := TrainOn(context.Background(), cfg, train.Dim, train.Classes, train.Labels, func(_ context.Context, epoch int, rows []int, dst []float32) error {
		epochs[epoch] = true
		for i, r := range rows {
			copy(dst[i*train.Dim:(i+1)*train.Dim], train.X[r*train.Dim:(r+1)*train.Dim])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.W, want.W) || !slices.Equal(got.B, want.B) || len(epochs) != 3 {
		t.Errorf("TrainOn differs from Train (epochs seen %v)", epochs)
	}
	fill := func(context.Context, int, []int, []float32) error { return nil }
	std := cfg
	std.Standardize = true
	if _, err := TrainOn(context.Background(), std, 8, 3, train.Labels, fill); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("standardize: %v", err)
	}
	if _, err := TrainOn(context.Background(), cfg, 8, 3, []int{0, 3}, fill); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("label 3 of 3 classes: %v", err)
	}
	boom := errors.New("boom")
	if _, err := TrainOn(context.Background(), cfg, 8, 3, train.Labels, func(context.Context, int, []int, []float32) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("batch error: %v", err)
	}
}
