package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Chart geometry in SVG user units; the page scales charts to its width.
const (
	chartW, chartH             = 560, 300
	padL, padR, padT, padB     = 64, 20, 28, 44
	maxDots                    = 40 // mark every point on sparser series
	maxHeatmapClasses          = 50 // bigger matrices stay in report.json only
	maxBarClasses              = 100
	maxLabelRunes              = 16
	heatmapGrid, labelCharWide = 560.0, 6.5
)

// series is one line of a chart; non-finite values leave a gap.
type series struct {
	name, color string
	x, y        []float64
}

type tick struct {
	Pos   float64
	Label string
}

type dot struct{ X, Y float64 }

type line struct {
	Name, Color string
	// LegendX and LegendY place the line's legend entry.
	LegendX, LegendY float64
	// D is the path data; a run of one finite point between gaps has no
	// segment and shows only as a dot.
	D    string
	Dots []dot
}

// chart is a line chart laid out for the template.
type chart struct {
	Title, XLabel, YLabel  string
	W, H                   float64
	Left, Right, Top, Bott float64
	MidX, MidY             float64
	XTicks, YTicks         []tick
	Lines                  []line
	// Legend is set when there is more than one line to tell apart.
	Legend bool
}

// lineChart lays out ss against shared axes. yRange fixes the y axis when
// non-nil (accuracies), otherwise it spans the data. label formats y ticks.
// It returns nil when no series has a finite point.
func lineChart(title, xLabel, yLabel string, yRange *[2]float64, label func(v, step float64) string, ss ...series) *chart {
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for i := range s.x {
			if finite(s.x[i]) && finite(s.y[i]) {
				xlo, xhi = min(xlo, s.x[i]), max(xhi, s.x[i])
				ylo, yhi = min(ylo, s.y[i]), max(yhi, s.y[i])
			}
		}
	}
	if xlo > xhi {
		return nil
	}
	if yRange != nil {
		ylo, yhi = yRange[0], yRange[1]
	}
	c := &chart{Title: title, XLabel: xLabel, YLabel: yLabel, W: chartW, H: chartH,
		Left: padL, Right: chartW - padR, Top: padT, Bott: chartH - padB, Legend: len(ss) > 1}
	c.MidX, c.MidY = (c.Left+c.Right)/2, (c.Top+c.Bott)/2
	xlo, xhi, xstep := niceRange(xlo, xhi)
	ylo, yhi, ystep := niceRange(ylo, yhi)
	px := func(v float64) float64 { return c.Left + (v-xlo)/(xhi-xlo)*(c.Right-c.Left) }
	py := func(v float64) float64 { return c.Bott - (v-ylo)/(yhi-ylo)*(c.Bott-c.Top) }
	for v := xlo; v <= xhi+xstep/2; v += xstep {
		c.XTicks = append(c.XTicks, tick{px(v), numLabel(v, xstep)})
	}
	for v := ylo; v <= yhi+ystep/2; v += ystep {
		c.YTicks = append(c.YTicks, tick{py(v), label(v, ystep)})
	}
	for _, s := range ss {
		l := line{Name: s.name, Color: s.color, LegendX: c.Left + 130*float64(len(c.Lines)), LegendY: 12}
		var d strings.Builder
		var all []dot
		penDown := false
		for i := range s.x {
			if !finite(s.x[i]) || !finite(s.y[i]) {
				penDown = false
				continue
			}
			p := dot{round(px(s.x[i])), round(py(s.y[i]))}
			cmd := "L"
			if !penDown {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%g %g ", cmd, p.X, p.Y)
			all = append(all, p)
			penDown = true
		}
		l.Dots = all
		if len(all) > maxDots {
			l.Dots = isolated(s, px, py)
		}
		l.D = strings.TrimSpace(d.String())
		c.Lines = append(c.Lines, l)
	}
	return c
}

// isolated returns the points of s with no finite neighbour, which a path
// alone would not show.
func isolated(s series, px, py func(float64) float64) []dot {
	ok := func(i int) bool { return i >= 0 && i < len(s.x) && finite(s.x[i]) && finite(s.y[i]) }
	var out []dot
	for i := range s.x {
		if ok(i) && !ok(i-1) && !ok(i+1) {
			out = append(out, dot{round(px(s.x[i])), round(py(s.y[i]))})
		}
	}
	return out
}

// niceRange widens [lo, hi] to multiples of a 1-2-5 step giving about five
// intervals.
func niceRange(lo, hi float64) (float64, float64, float64) {
	if hi-lo < 1e-12*max(1, math.Abs(hi)) {
		pad := max(math.Abs(hi)*0.1, 1e-9)
		if hi == 0 {
			pad = 1
		}
		lo, hi = lo-pad, hi+pad
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Floor(lo/step+1e-9) * step, math.Ceil(hi/step-1e-9) * step, step
}

// numLabel prints a tick value with as many decimals as its step needs.
func numLabel(v, step float64) string {
	if math.Abs(v) < step/1e6 {
		return "0"
	}
	if step < 1e-3 || math.Abs(v) >= 1e7 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	decimals := max(0, int(math.Ceil(-math.Log10(step)-1e-9)))
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// pctLabel prints a fraction tick as a percentage.
func pctLabel(v, step float64) string { return numLabel(v*100, step*100) + "%" }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func round(v float64) float64 { return math.Round(v*10) / 10 }

type cell struct {
	X, Y           float64
	Fill, TextFill string
	Text, Title    string
}

type axisLabel struct {
	X, Y float64
	Text string
}

// heatmap is a confusion matrix laid out for the template: rows are true
// classes, columns predictions, shaded by the share of the row.
type heatmap struct {
	W, H             float64
	Cell, Half, Font float64
	Cells            []cell
	Rows, Cols       []axisLabel
	// TrueAxis and PredAxis place the axis titles.
	TrueAxis, PredAxis axisLabel
}

func newHeatmap(l *Linear) *heatmap {
	n := len(l.Confusion)
	names := make([]string, n)
	longest := 1
	for i := range names {
		names[i] = shorten(l.className(i))
		longest = max(longest, len([]rune(names[i])))
	}
	size := math.Min(44, math.Max(8, heatmapGrid/float64(n)))
	labelW := 10 + labelCharWide*float64(longest)
	x0, y0 := 24+labelW, 8.0
	h := &heatmap{Cell: size, Half: size / 2, Font: math.Min(12, size*0.4)}
	grid := size * float64(n)
	h.W = math.Ceil(x0 + grid + 16)
	h.H = math.Ceil(y0 + grid + labelW*0.75 + 30)
	h.TrueAxis = axisLabel{X: 12, Y: y0 + grid/2, Text: "true class"}
	h.PredAxis = axisLabel{X: x0 + grid/2, Y: h.H - 6, Text: "predicted class"}
	for i, row := range l.Confusion {
		total := 0
		for _, v := range row {
			total += v
		}
		y := y0 + float64(i)*size
		h.Rows = append(h.Rows, axisLabel{X: x0 - 6, Y: y + size/2, Text: names[i]})
		for j, v := range row {
			share := 0.0
			if total > 0 {
				share = float64(v) / float64(total)
			}
			c := cell{X: x0 + float64(j)*size, Y: y, Fill: blue(share), TextFill: "#222",
				Title: fmt.Sprintf("true %s, predicted %s: %d (%.1f%% of row)", l.className(i), l.className(j), v, 100*share)}
			if share > 0.5 {
				c.TextFill = "#fff"
			}
			if n <= 20 {
				c.Text = strconv.Itoa(v)
			}
			h.Cells = append(h.Cells, c)
		}
	}
	for j := range n {
		h.Cols = append(h.Cols, axisLabel{X: x0 + float64(j)*size + size/2, Y: y0 + grid + 8, Text: names[j]})
	}
	return h
}

// blue shades a share in [0, 1] from near white to dark blue.
func blue(share float64) string {
	lo, hi := [3]float64{247, 251, 255}, [3]float64{8, 48, 107}
	var c [3]int
	for i := range c {
		c[i] = int(math.Round(lo[i] + (hi[i]-lo[i])*share))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

func shorten(s string) string {
	r := []rune(s)
	if len(r) <= maxLabelRunes {
		return s
	}
	return string(r[:maxLabelRunes-1]) + "…"
}

type bar struct {
	Y, W         float64
	Label, Value string
}

// bars is a horizontal bar chart of per-class accuracy.
type bars struct {
	W, H            float64
	Left, Full, Row float64
	// Bottom is the y of the axis under the last bar.
	Bottom float64
	Bars   []bar
	Ticks  []tick
}

func newBars(l *Linear) *bars {
	longest := 1
	for i := range l.PerClass {
		longest = max(longest, len([]rune(shorten(l.className(i)))))
	}
	b := &bars{Left: 12 + labelCharWide*float64(longest), Full: 400, Row: 20}
	b.W = math.Ceil(b.Left + b.Full + 60)
	b.Bottom = b.Row * float64(len(l.PerClass))
	b.H = b.Bottom + 24
	for i, v := range l.PerClass {
		br := bar{Y: b.Row * float64(i), Label: shorten(l.className(i)), Value: "n/a"}
		if v.Valid() {
			br.W = round(b.Full * math.Min(1, math.Max(0, float64(v))))
			br.Value = fmt.Sprintf("%.1f%%", 100*float64(v))
		}
		b.Bars = append(b.Bars, br)
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		b.Ticks = append(b.Ticks, tick{b.Left + f*b.Full, fmt.Sprintf("%.0f%%", 100*f)})
	}
	return b
}
