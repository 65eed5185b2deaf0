package probe

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/supflow/supflow/config/field"
)

// chunkBytes bounds the similarity block KNN holds when ChunkRows is unset.
const chunkBytes = 32 << 20

// Bounds of KNNConfig fields.
const (
	maxK           = 10000
	minTemperature = 1e-4
	maxTemperature = 100
)

// KNNConfig sets up the kNN classifier (the train stage's monitor and the
// evaluate stage's score). Its YAML tags are the keys pipeline.yaml gives
// it: the train section's knn_k and knn_temperature, the kNN monitor's
// (the evaluate section has its own knn_k). The zero value is usable: KNN
// fills unset fields from DefaultKNNConfig.
type KNNConfig struct {
	// K is the number of neighbours that vote, in [1, 10000] (default
	// 200); it must not exceed the training set.
	K int `yaml:"knn_k"`
	// Temperature scales the votes, exp(similarity/Temperature), in
	// [1e-4, 100] (default 0.1).
	Temperature float64 `yaml:"knn_temperature"`
	// ChunkRows is the number of test rows whose similarities to the whole
	// training set are held at once (default: as many as fit in 32 MiB).
	// Not a pipeline.yaml key.
	ChunkRows int `yaml:"-"`
}

// DefaultKNNConfig returns the defaults of every field (ChunkRows 0:
// derived from the training set's size).
func DefaultKNNConfig() KNNConfig { return KNNConfig{K: 200, Temperature: 0.1} }

// SetDefaults fills c's zero K and Temperature from DefaultKNNConfig.
func (c *KNNConfig) SetDefaults() {
	d := DefaultKNNConfig()
	if c.K == 0 {
		c.K = d.K
	}
	if c.Temperature == 0 {
		c.Temperature = d.Temperature
	}
}

// Validate reports every field of c out of range, each a *field.Error
// (config/field) named by its key and wrapping ErrInvalidConfig. It checks
// c as given: a zero K or Temperature is refused (KNN fills them first).
func (c KNNConfig) Validate() error {
	k := field.NewChecker(ErrInvalidConfig)
	k.IntIn("knn_k", c.K, 1, maxK)
	k.FloatIn("knn_temperature", c.Temperature, minTemperature, maxTemperature)
	if c.ChunkRows < 0 {
		k.Add("chunk_rows", c.ChunkRows, "an integer >= 0 (0 = what fits in 32 MiB)")
	}
	return k.Err()
}

// KNN classifies every test row by its K most cosine-similar training rows,
// each voting for its class with weight exp(similarity/Temperature), the
// monitor of InstDisc and most self-supervised codebases. Features need not
// be normalised; a zero row has similarity 0 to everything. Memory beyond
// the inputs is O(ChunkRows × train rows). It checks ctx between chunks.
func KNN(ctx context.Context, cfg KNNConfig, train, test Set) (Score, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Score{}, err
	}
	if err := train.validate("train"); err != nil {
		return Score{}, err
	}
	if err := test.validate("test"); err != nil {
		return Score{}, err
	}
	n, d, classes := train.Len(), train.Dim, train.Classes
	switch {
	case test.Dim != d || test.Classes != classes:
		return Score{}, fmt.Errorf("%w: test set has dim %d and %d classes, train set %d and %d",
			ErrInvalidInput, test.Dim, test.Classes, d, classes)
	case cfg.K > n:
		return Score{}, fmt.Errorf("%w: knn k=%d exceeds the %d training rows", ErrInvalidInput, cfg.K, n)
	}
	chunk := cfg.ChunkRows
	if chunk == 0 {
		chunk = max(1, chunkBytes/(4*n))
	}
	chunk = min(chunk, test.Len())
	trainInv, testInv := invNorms(train), invNorms(test)
	sim := make([]float32, chunk*n)
	votes := make([]float32, chunk*classes)
	t := newTally(classes)
	workers := runtime.GOMAXPROCS(0)
	heaps := make([]neighbours, workers)
	for lo := 0; lo < test.Len(); lo += chunk {
		if err := ctx.Err(); err != nil {
			return Score{}, fmt.Errorf("probe: knn stopped: %w", err)
		}
		hi := min(test.Len(), lo+chunk)
		m := hi - lo
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, general(m, d, test.X[lo*d:hi*d]), general(n, d, train.X), 0, general(m, n, sim))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < m; i += workers {
					vote(sim[i*n:(i+1)*n], trainInv, testInv[lo+i], train.Labels, cfg,
						&heaps[w], votes[i*classes:(i+1)*classes])
				}
			})
		}
		wg.Wait()
		t.add(votes[:m*classes], test.Labels[lo:hi])
	}
	return t.score(), nil
}

// vote fills out with the class scores of one test row from its raw dot
// products with every training row.
func vote(dots, trainInv []float32, inv float32, labels []int, cfg KNNConfig, h *neighbours, out []float32) {
	*h = (*h)[:0]
	for j, v := range dots {
		s := v * inv * trainInv[j]
		switch {
		case len(*h) < cfg.K:
			h.push(neighbour{sim: s, label: labels[j]})
		case s > (*h)[0].sim:
			h.replaceRoot(neighbour{sim: s, label: labels[j]})
		}
	}
	top := float32(math.Inf(-1))
	for _, nb := range *h {
		top = max(top, nb.sim)
	}
	// Shifting by the top similarity keeps exp finite at low temperatures
	// without changing which class wins.
	clear(out)
	for _, nb := range *h {
		out[nb.label] += float32(math.Exp(float64(nb.sim-top) / cfg.Temperature))
	}
}

// invNorms returns 1/‖row‖ for every row of s, 0 for zero rows.
func invNorms(s Set) []float32 {
	inv := make([]float32, s.Len())
	for i := range inv {
		var sq float64
		for _, v := range s.X[i*s.Dim : (i+1)*s.Dim] {
			sq += float64(v) * float64(v)
		}
		if sq > 0 {
			inv[i] = float32(1 / math.Sqrt(sq))
		}
	}
	return inv
}

type neighbour struct {
	sim   float32
	label int
}

// neighbours is a min-heap on similarity: its root is the weakest of the
// current K nearest. It is hand-rolled because container/heap would box
// every candidate.
type neighbours []neighbour

// push adds nb while the heap holds fewer than its capacity allows.
func (h *neighbours) push(nb neighbour) {
	*h = append(*h, nb)
	hp := *h
	for i := len(hp) - 1; i > 0; {
		parent := (i - 1) / 2
		if hp[parent].sim <= hp[i].sim {
			break
		}
		hp[parent], hp[i] = hp[i], hp[parent]
		i = parent
	}
}

// replaceRoot swaps the weakest neighbour for nb and restores the order.
func (h neighbours) replaceRoot(nb neighbour) {
	h[0] = nb
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].sim < h[least].sim {
			least = l
		}
		if r < len(h) && h[r].sim < h[least].sim {
			least = r
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}
