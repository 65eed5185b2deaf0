package loss

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"

	"github.com/supflow/supflow/config/field"
)

// ErrInput is returned (wrapped) for invalid loss inputs or configuration.
var ErrInput = errors.New("loss: invalid input")

// ContrastMode selects the anchors of the SupCon loss.
type ContrastMode string

const (
	// ContrastAll uses every view of every sample as an anchor.
	ContrastAll ContrastMode = "all"
	// ContrastOne uses only view 0 of each sample as an anchor; all views
	// remain in the contrast set.
	ContrastOne ContrastMode = "one"
)

// Defaults of SupContrast's SupConLoss.
const (
	DefaultTemperature     = 0.07
	DefaultBaseTemperature = 0.07
)

// Bounds of SupConConfig's temperatures.
const (
	minTemperature = 1e-4 // the range pipeline.yaml has always allowed
	maxTemperature = 100
)

// SupConConfig holds the hyper-parameters of the SupCon loss. Its YAML tags
// are the keys of pipeline.yaml's train section that it declares
// (temperature, base_temperature). The zero value is SupContrast's default:
// temperature 0.07, base temperature 0.07, mode "all".
type SupConConfig struct {
	// Temperature divides the cosine similarities, in [1e-4, 100]; 0
	// means 0.07.
	Temperature float64 `json:"temperature,omitempty" yaml:"temperature"`
	// BaseTemperature scales the loss by Temperature/BaseTemperature, in
	// [1e-4, 100]; 0 means 0.07.
	BaseTemperature float64 `json:"base_temperature,omitempty" yaml:"base_temperature"`
	// ContrastMode is "all" (default when empty) or "one". Not a
	// pipeline.yaml key.
	ContrastMode ContrastMode `json:"contrast_mode,omitempty" yaml:"-"`
}

// SetDefaults fills the zero fields: DefaultTemperature,
// DefaultBaseTemperature, ContrastAll.
func (c *SupConConfig) SetDefaults() {
	if c.Temperature == 0 {
		c.Temperature = DefaultTemperature
	}
	if c.BaseTemperature == 0 {
		c.BaseTemperature = DefaultBaseTemperature
	}
	if c.ContrastMode == "" {
		c.ContrastMode = ContrastAll
	}
}

// Validate reports every field of c out of range, each a *field.Error
// (config/field) named by its key and wrapping ErrInput. It checks c as
// given: a zero temperature is refused (SupCon and SupConNode fill it
// first); an empty ContrastMode, not a key, stands for "all".
func (c SupConConfig) Validate() error {
	k := field.NewChecker(ErrInput)
	k.FloatIn("temperature", c.Temperature, minTemperature, maxTemperature)
	k.FloatIn("base_temperature", c.BaseTemperature, minTemperature, maxTemperature)
	if c.ContrastMode != "" {
		k.OneOf("contrast_mode", string(c.ContrastMode), string(ContrastAll), string(ContrastOne))
	}
	return k.Err()
}

// SupConResult is the output of [SupCon].
type SupConResult[T Float] struct {
	// Loss is the mean of AnchorLoss.
	Loss float64
	// Grad is d Loss / d features, laid out like the features.
	Grad []T
	// AnchorLoss holds one loss per anchor. Anchor a is feature row a: with
	// mode "all" there are n_views*bsz anchors (a = v*bsz+i is view v of
	// sample i); with mode "one" there are bsz (view 0 of each sample).
	AnchorLoss []float64
	// Positives is each anchor's total positive weight: its number of
	// positives for a 0/1 mask. An anchor with none has loss 0 and still
	// counts in the mean.
	Positives []float64
}

// NoPositive is the positive weight below which SupContrast treats an anchor
// as having no positive (and divides by 1 instead).
const NoPositive = 1e-6

// SupCon computes the supervised contrastive loss of SupContrast's
// SupConLoss and its gradient.
//
// features holds N = nViews*bsz rows of dim values, view-major: row v*bsz+i
// is view v of sample i. The features are used as given (the caller
// normalises them). Positives come from labels (len bsz: same label, same
// class), or from mask (bsz*bsz row-major; mask[i*bsz+j] is the weight of
// sample j as a positive of anchor sample i, 1 or 0 for the usual case; it
// need not be symmetric), or from neither, which gives the unsupervised
// SimCLR loss (only the other views of the same sample are positives).
// Passing both labels and mask is an error, as it is in SupContrast.
//
// The row maximum (over the non-self columns) is subtracted before the
// exponentials, so large logits do not overflow.
func SupCon[T Float](features []T, nViews, dim int, labels []int, mask []T, cfg SupConConfig) (SupConResult[T], error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return SupConResult[T]{}, err
	}
	bsz, err := checkSupConInput(features, nViews, dim, labels, mask)
	if err != nil {
		return SupConResult[T]{}, err
	}
	weight := positiveWeights(bsz, labels, mask)

	n := nViews * bsz
	anchors := n
	if cfg.ContrastMode == ContrastOne {
		anchors = bsz
	}
	invT := 1 / cfg.Temperature
	scale := cfg.Temperature / cfg.BaseTemperature

	// s[a][c] = <f_a, f_c> / T for anchor rows a and all rows c; the matrix
	// is then overwritten row by row with d Loss / d s.
	s := make([]T, anchors*n)
	gemm(blas.NoTrans, blas.Trans, anchors, n, dim, T(invT), features[:anchors*dim], dim, features, dim, 0, s, n)

	res := SupConResult[T]{
		AnchorLoss: make([]float64, anchors),
		Positives:  make([]float64, anchors),
	}
	var total float64
	for a := range anchors {
		row := s[a*n : (a+1)*n]
		w := weight[(a%bsz)*bsz : (a%bsz+1)*bsz]
		m := math.Inf(-1)
		for c, v := range row {
			if c != a && float64(v) > m {
				m = float64(v)
			}
		}
		// One pass for the sums, keeping exp(s_ac - m) in the row for the
		// softmax below.
		var sumExp, wSum, wLogit float64
		for c, v := range row {
			if c == a {
				row[c] = 0
				continue
			}
			x := float64(v) - m
			e := math.Exp(x)
			row[c] = T(e)
			sumExp += e
			wc := w[c%bsz]
			wSum += wc
			wLogit += wc * x
		}
		lse := math.Log(sumExp)
		div := wSum
		if div < NoPositive {
			div = 1
		}
		// sum_c w_c*log p_c = sum_c w_c*(x_c - lse)
		la := -scale * (wLogit - wSum*lse) / div
		res.AnchorLoss[a] = la
		res.Positives[a] = wSum
		total += la

		// d L / d s_ac = -(scale / (anchors*div)) * (w_c - wSum * softmax_c)
		g := -scale / (float64(anchors) * div)
		for c, e := range row {
			if c != a {
				row[c] = T(g * (w[c%bsz] - wSum*float64(e)/sumExp))
			}
		}
	}
	res.Loss = total / float64(anchors)

	// s_ac depends on f_a (as anchor) and f_c (as contrast):
	// dF = (1/T) * (G^T F_anchor + [G F] on the anchor rows).
	res.Grad = make([]T, n*dim)
	gemm(blas.Trans, blas.NoTrans, n, dim, anchors, T(invT), s, n, features[:anchors*dim], dim, 0, res.Grad, dim)
	gemm(blas.NoTrans, blas.NoTrans, anchors, dim, n, T(invT), s, n, features, dim, 1, res.Grad[:anchors*dim], dim)
	return res, nil
}

// checkSupConInput validates the kernel inputs and returns the batch size.
func checkSupConInput[T Float](features []T, nViews, dim int, labels []int, mask []T) (int, error) {
	if nViews < 1 || dim < 1 {
		return 0, fmt.Errorf("%w: n_views %d and dim %d must be positive", ErrInput, nViews, dim)
	}
	if len(features) == 0 || len(features)%dim != 0 {
		return 0, fmt.Errorf("%w: %d feature values are not a whole number of rows of dim %d", ErrInput, len(features), dim)
	}
	n := len(features) / dim
	if n%nViews != 0 {
		return 0, fmt.Errorf("%w: %d feature rows are not a multiple of n_views %d", ErrInput, n, nViews)
	}
	if n < 2 {
		return 0, fmt.Errorf("%w: SupCon needs at least 2 feature rows, got %d", ErrInput, n)
	}
	if i := firstNonFinite(features); i >= 0 {
		return 0, fmt.Errorf("%w: feature [%d][%d] is %v", ErrInput, i/dim, i%dim, features[i])
	}
	bsz := n / nViews
	switch {
	case labels != nil && mask != nil:
		return 0, fmt.Errorf("%w: both labels and mask given; pass one", ErrInput)
	case labels != nil && len(labels) != bsz:
		return 0, fmt.Errorf("%w: %d labels for batch size %d", ErrInput, len(labels), bsz)
	case mask != nil && len(mask) != bsz*bsz:
		return 0, fmt.Errorf("%w: mask has %d values, want %d x %d", ErrInput, len(mask), bsz, bsz)
	}
	for i, v := range mask {
		if f := float64(v); !(f >= 0) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%w: mask [%d][%d] = %v, want a finite non-negative weight", ErrInput, i/bsz, i%bsz, v)
		}
	}
	return bsz, nil
}

// positiveWeights returns the [bsz*bsz] positive weights in float64.
func positiveWeights[T Float](bsz int, labels []int, mask []T) []float64 {
	w := make([]float64, bsz*bsz)
	switch {
	case mask != nil:
		for i, v := range mask {
			w[i] = float64(v)
		}
	case labels != nil:
		for i := range bsz {
			for j := range bsz {
				if labels[i] == labels[j] {
					w[i*bsz+j] = 1
				}
			}
		}
	default:
		for i := range bsz {
			w[i*bsz+i] = 1
		}
	}
	return w
}
