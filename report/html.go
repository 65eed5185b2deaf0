package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"time"
)

//go:embed page.html.tmpl
var pageSource string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"add": func(a, b float64) float64 { return a + b },
	"num": fmtFloat,
	"pct": fmtPct,
}).Parse(pageSource))

// palette colours the lines of one chart.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}

type row struct{ Key, Value string }

type stageRow struct {
	Name, Rate string
	Bottleneck bool
}

// view is what the template renders: the report plus its laid-out parts.
type view struct {
	R          *Report
	Summary    []row
	Curves     []*chart
	KNN        *chart
	Heatmap    *heatmap
	Bars       *bars
	Omitted    []string
	Throughput []stageRow
}

// WriteHTML validates r and writes report.html to w: one self-contained page
// with no scripts or external assets. Missing sections are left out.
func WriteHTML(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, newView(r)); err != nil {
		return fmt.Errorf("report: render html: %w", err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("report: write html: %w", err)
	}
	return nil
}

func newView(r *Report) *view {
	v := &view{R: r, Summary: summary(r)}
	steps := make([]float64, len(r.Pretrain))
	pick := func(f func(Point) Float) []float64 {
		out := make([]float64, len(r.Pretrain))
		for i, p := range r.Pretrain {
			out[i] = float64(f(p))
		}
		return out
	}
	for i, p := range r.Pretrain {
		steps[i] = float64(p.Step)
	}
	for _, c := range []struct {
		title, unit string
		f           func(Point) Float
	}{
		{"Pretraining loss", "loss", func(p Point) Float { return p.Loss }},
		{"Learning rate", "lr", func(p Point) Float { return p.LR }},
		{"Training throughput", "samples/s", func(p Point) Float { return p.SamplesPerSec }},
		{"Data wait", "seconds", func(p Point) Float { return p.DataWaitSeconds }},
	} {
		s := series{name: c.unit, color: palette[0], x: steps, y: pick(c.f)}
		if ch := lineChart(c.title, "step", c.unit, nil, numLabel, s); ch != nil {
			v.Curves = append(v.Curves, ch)
		}
	}
	if len(r.KNN) > 0 {
		epochs, top1, top5 := make([]float64, len(r.KNN)), make([]float64, len(r.KNN)), make([]float64, len(r.KNN))
		for i, p := range r.KNN {
			epochs[i], top1[i], top5[i] = float64(p.Epoch), float64(p.Top1), float64(p.Top5)
		}
		v.KNN = lineChart("kNN accuracy", "epoch", "accuracy", &[2]float64{0, 1}, pctLabel,
			series{"top-1", palette[0], epochs, top1}, series{"top-5", palette[1], epochs, top5})
	}
	if l := r.Linear; l != nil {
		switch n := len(l.Confusion); {
		case n > maxHeatmapClasses:
			v.Omitted = append(v.Omitted, fmt.Sprintf("The %d×%d confusion matrix is too large to draw; it is in report.json.", n, n))
		case n > 0:
			v.Heatmap = newHeatmap(l)
		}
		switch n := len(l.PerClass); {
		case n > maxBarClasses:
			v.Omitted = append(v.Omitted, fmt.Sprintf("Per-class accuracy of %d classes is in report.json.", n))
		case n > 0:
			v.Bars = newBars(l)
		}
	}
	slowest := -1
	for i, s := range r.Throughput {
		v.Throughput = append(v.Throughput, stageRow{Name: s.Name, Rate: fmtFloat(s.SamplesPerSec)})
		if s.SamplesPerSec.Valid() && (slowest < 0 || s.SamplesPerSec < r.Throughput[slowest].SamplesPerSec) {
			slowest = i
		}
	}
	if slowest >= 0 && len(r.Throughput) > 1 {
		v.Throughput[slowest].Bottleneck = true
	}
	return v
}

func summary(r *Report) []row {
	rows := []row{
		{"Run", orDash(r.RunID)},
		{"Dataset", orDash(r.Dataset)},
		{"Method", orDash(r.Method)},
		{"Model", orDash(r.Model.Arch)},
		{"Parameters", "—"},
		{"Started", fmtTime(r.Started)},
		{"Finished", fmtTime(r.Finished)},
	}
	if r.Model.Params > 0 {
		rows[4].Value = fmt.Sprintf("%s (%d)", humanCount(r.Model.Params), r.Model.Params)
	}
	if !r.Started.IsZero() && r.Finished.After(r.Started) {
		rows = append(rows, row{"Duration", r.Finished.Sub(r.Started).Round(time.Second).String()})
	}
	if n := len(r.Pretrain); n > 0 {
		last := r.Pretrain[n-1]
		rows = append(rows, row{"Pretraining", fmt.Sprintf("%d points, last at step %d, loss %s", n, last.Step, fmtFloat(last.Loss))})
	}
	best := -1
	for i, p := range r.KNN {
		if p.Top1.Valid() && (best < 0 || p.Top1 > r.KNN[best].Top1) {
			best = i
		}
	}
	if best >= 0 {
		rows = append(rows, row{"Best kNN top-1", fmt.Sprintf("%s at epoch %d", fmtPct(r.KNN[best].Top1), r.KNN[best].Epoch)})
	}
	if l := r.Linear; l != nil {
		rows = append(rows, row{"Linear probe", fmt.Sprintf("top-1 %s, top-5 %s, loss %s", fmtPct(l.Top1), fmtPct(l.Top5), fmtFloat(l.Loss))})
	}
	return rows
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// fmtFloat prints a measurement with about four significant digits and no
// exponent in the usual ranges, "—" if missing.
func fmtFloat(f Float) string {
	if !f.Valid() {
		return "—"
	}
	v := float64(f)
	switch a := math.Abs(v); {
	case a >= 1e4 && a < 1e12:
		return fmt.Sprintf("%.0f", v)
	case a != 0 && (a < 1e-3 || a >= 1e12):
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// fmtPct prints a fraction as a percentage, "—" if missing.
func fmtPct(f Float) string {
	if !f.Valid() {
		return "—"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(f))
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f k", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
