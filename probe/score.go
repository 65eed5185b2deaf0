package probe

import (
	"fmt"
	"math"
)

// Score summarises a classifier on a labelled set.
type Score struct {
	// N is the number of scored rows.
	N int `json:"n"`
	// Top1 is the fraction of rows whose highest-scoring class is the label.
	Top1 float64 `json:"top1"`
	// Top5 is the fraction of rows whose label is among the TopK highest
	// scores, where TopK is min(5, classes).
	Top5 float64 `json:"top5"`
	TopK int     `json:"top_k"`
	// PerClass is the top-1 accuracy of each true class; 0 for a class with
	// no rows (see Support).
	PerClass []float64 `json:"per_class"`
	// Support counts the rows of each true class.
	Support []int `json:"support"`
	// Confusion counts rows by [true class][predicted class].
	Confusion [][]int `json:"confusion"`
}

// Evaluate scores a classifier from its class scores: scores holds one row
// of classes values per label (higher is more likely), row-major. Ties go to
// the lower class index, for top-1 and top-k alike.
func Evaluate(scores []float32, labels []int, classes int) (Score, error) {
	if err := checkScores(scores, labels, classes); err != nil {
		return Score{}, err
	}
	t := newTally(classes)
	t.add(scores, labels)
	return t.score(), nil
}

// TopK returns the fraction of rows whose label is among the k highest of
// its class scores (laid out as for Evaluate); k must be in [1, classes].
func TopK(scores []float32, labels []int, classes, k int) (float64, error) {
	if err := checkScores(scores, labels, classes); err != nil {
		return 0, err
	}
	if k < 1 || k > classes {
		return 0, fmt.Errorf("%w: top-k with k=%d, want [1, %d]", ErrInvalidInput, k, classes)
	}
	hits := 0
	for i, l := range labels {
		if rank(scores[i*classes:(i+1)*classes], l) < k {
			hits++
		}
	}
	return float64(hits) / float64(len(labels)), nil
}

func checkScores(scores []float32, labels []int, classes int) error {
	switch {
	case classes < 2:
		return fmt.Errorf("%w: %d classes, want >= 2", ErrInvalidInput, classes)
	case len(labels) == 0:
		return fmt.Errorf("%w: no labels to score", ErrInvalidInput)
	case len(scores) != len(labels)*classes:
		return fmt.Errorf("%w: %d scores for %d labels of %d classes", ErrInvalidInput, len(scores), len(labels), classes)
	}
	for i, l := range labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("%w: row %d has label %d, want [0, %d)", ErrInvalidInput, i, l, classes)
		}
	}
	return nil
}

// rank is the position of class c when row is sorted by descending score,
// ties broken by class index; NaN scores rank last.
func rank(row []float32, c int) int {
	s := row[c]
	if math.IsNaN(float64(s)) {
		return len(row) - 1
	}
	r := 0
	for j, v := range row {
		if v > s || (v == s && j < c) {
			r++
		}
	}
	return r
}

// argmax is the class of rank 0: the first highest score, NaN never winning
// over a number.
func argmax(row []float32) int {
	best := -1
	for j, v := range row {
		if !math.IsNaN(float64(v)) && (best < 0 || v > row[best]) {
			best = j
		}
	}
	return max(best, 0)
}

// tally accumulates a Score chunk by chunk, so callers never hold the whole
// score matrix.
type tally struct {
	classes, k    int
	n, hit1, hitK int
	confusion     [][]int
}

func newTally(classes int) *tally {
	t := &tally{classes: classes, k: min(5, classes), confusion: make([][]int, classes)}
	for i := range t.confusion {
		t.confusion[i] = make([]int, classes)
	}
	return t
}

// add counts rows of scores ([len(labels), classes]) against their labels.
func (t *tally) add(scores []float32, labels []int) {
	for i, l := range labels {
		row := scores[i*t.classes : (i+1)*t.classes]
		pred := argmax(row)
		t.confusion[l][pred]++
		if pred == l {
			t.hit1++
		}
		if rank(row, l) < t.k {
			t.hitK++
		}
	}
	t.n += len(labels)
}

func (t *tally) score() Score {
	s := Score{
		N:         t.n,
		TopK:      t.k,
		PerClass:  make([]float64, t.classes),
		Support:   make([]int, t.classes),
		Confusion: t.confusion,
	}
	if t.n > 0 {
		s.Top1 = float64(t.hit1) / float64(t.n)
		s.Top5 = float64(t.hitK) / float64(t.n)
	}
	for c, row := range t.confusion {
		for _, v := range row {
			s.Support[c] += v
		}
		if s.Support[c] > 0 {
			s.PerClass[c] = float64(row[c]) / float64(s.Support[c])
		}
	}
	return s
}
