package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// sample is a plausible CIFAR-10 run with a diverged-then-recovered stretch
// (NaN loss) and a missing kNN measurement.
func sample() *Report {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := &Report{
		RunID:    "run-<42>",
		Started:  start,
		Finished: start.Add(95 * time.Minute),
		Dataset:  "cifar10",
		Model:    Model{Arch: "resnet18", Params: 11_173_962},
		Method:   "supcon",
		Notes:    []string{"Temperature 0.1, batch 512 & two views.", "Loss <spiked> at step 700."},
	}
	for i := range 50 {
		step := int64(i * 20)
		lr := 0.5 * (1 + math.Cos(math.Pi*float64(i)/50)) / 2
		p := Point{Step: step, Epoch: Float(float64(i) / 10), Loss: Float(6*math.Exp(-float64(i)/15) + 1.2),
			LR: Float(lr), SamplesPerSec: Float(900 + 40*math.Sin(float64(i))), DataWaitSeconds: Float(0.02 + 0.01*math.Cos(float64(i)))}
		if i == 35 || i == 36 {
			p.Loss = Float(math.NaN())
		}
		r.Pretrain = append(r.Pretrain, p)
	}
	for e := 1; e <= 5; e++ {
		r.KNN = append(r.KNN, KNNPoint{Epoch: e, Top1: Float(0.3 + 0.1*float64(e)), Top5: Float(0.7 + 0.05*float64(e))})
	}
	r.KNN[2].Top5 = Missing
	classes := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	l := &Linear{Top1: 0.8734, Top5: 0.9921, Loss: 0.412, Classes: classes}
	for i := range classes {
		row := make([]int, len(classes))
		for j := range row {
			row[j] = (i*7 + j*3) % 11
		}
		row[i] = 850 + 10*i
		l.Confusion = append(l.Confusion, row)
		l.PerClass = append(l.PerClass, Float(float64(row[i])/1000))
	}
	l.Confusion[3][5], l.Confusion[5][3] = 120, 95 // cats and dogs
	r.Linear = l
	r.Throughput = []Stage{{"feeder", 25000}, {"decode", 1800}, {"augment", 1500}, {"train", 910.5}}
	return r
}

func TestJSONRoundTrip(t *testing.T) {
	tests := map[string]*Report{"sample": sample(), "empty": {}}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			var first bytes.Buffer
			if err := WriteJSON(&first, r); err != nil {
				t.Fatal(err)
			}
			back, err := ReadJSON(bytes.NewReader(first.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			// NaN != NaN, so compare encodings rather than structs.
			var second bytes.Buffer
			if err := WriteJSON(&second, back); err != nil {
				t.Fatal(err)
			}
			if first.String() != second.String() {
				t.Errorf("round trip changed the report:\n%s\nvs\n%s", first.String(), second.String())
			}
		})
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(back.Pretrain[35].Loss)) || !math.IsNaN(float64(back.KNN[2].Top5)) {
		t.Error("missing values did not come back as NaN")
	}
	if !back.Started.Equal(sample().Started) || back.Linear.Confusion[3][5] != 120 {
		t.Error("fields lost in the round trip")
	}
}

func TestFloatJSON(t *testing.T) {
	tests := []struct {
		in   Float
		want string
	}{
		{1.5, "1.5"},
		{0, "0"},
		{Missing, "null"},
		{Float(math.Inf(1)), "null"},
		{Float(math.Inf(-1)), "null"},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
	var f Float
	if err := json.Unmarshal([]byte(`"x"`), &f); err == nil {
		t.Error("Unmarshal of a string succeeded")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Report)
	}{
		{"per-class length", func(r *Report) { r.Linear.PerClass = r.Linear.PerClass[:9] }},
		{"class names length", func(r *Report) { r.Linear.Classes = r.Linear.Classes[:3] }},
		{"confusion rows", func(r *Report) { r.Linear.Confusion = r.Linear.Confusion[:9] }},
		{"ragged confusion", func(r *Report) { r.Linear.Confusion[4] = r.Linear.Confusion[4][:2] }},
		{"negative count", func(r *Report) { r.Linear.Confusion[1][2] = -1 }},
		{"unnamed stage", func(r *Report) { r.Throughput[1].Name = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample()
			tt.mutate(r)
			for what, err := range map[string]error{
				"Validate":  r.Validate(),
				"WriteJSON": WriteJSON(io.Discard, r),
				"WriteHTML": WriteHTML(io.Discard, r),
			} {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: err %v, want ErrInvalid", what, err)
				}
			}
		})
	}
	if err := (*Report)(nil).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil report: err %v, want ErrInvalid", err)
	}
	if _, err := ReadJSON(strings.NewReader(`{"linear": {"confusion": [[1, 2]]}}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("ReadJSON of a ragged matrix: err %v, want ErrInvalid", err)
	}
	if _, err := ReadJSON(strings.NewReader(`{"run_id": 7}`)); err == nil {
		t.Error("ReadJSON of a numeric run id succeeded")
	}
}

// render writes r as HTML and parses it back, failing the test on either.
func render(t *testing.T, r *Report) (string, *html.Node) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return buf.String(), doc
}

// walk calls f on n and every node below it.
func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func TestWriteHTML(t *testing.T) {
	src, doc := render(t, sample())
	var text strings.Builder
	elements := map[string]int{}
	walk(doc, func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			text.WriteString(n.Data + "\n")
		case html.ElementNode:
			elements[n.Data]++
			for _, a := range n.Attr {
				if a.Key == "src" || a.Key == "href" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("<%s %s=%q>: the page must not load or run anything", n.Data, a.Key, a.Val)
				}
			}
		}
	})
	for _, tag := range []string{"script", "link", "img", "iframe"} {
		if elements[tag] > 0 {
			t.Errorf("page has %d <%s> elements, want none", elements[tag], tag)
		}
	}
	// Five line charts, per-class bars and the confusion matrix.
	if elements["svg"] != 7 {
		t.Errorf("page has %d <svg> elements, want 7", elements["svg"])
	}
	if elements["rect"] < 100 {
		t.Errorf("page has %d <rect> elements, want a 10x10 heatmap and bars", elements["rect"])
	}
	got := text.String()
	for _, want := range []string{
		"run-<42>", "cifar10", "supcon", "resnet18", "11.17 M (11173962)", "1h35m0s",
		"87.34%", "99.21%", "0.412", "80.00% at epoch 5",
		"airplane", "truck", "120", "95", "94.0%",
		"feeder", "25000", "910.5", "slowest",
		"Loss <spiked> at step 700.", "batch 512 & two views.",
		"Pretraining loss", "Learning rate", "kNN accuracy", "top-5", "100%", "0.5", "step", "epoch",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page text lacks %q", want)
		}
	}
	if strings.Contains(src, "<spiked>") || strings.Contains(src, "run-<42>") {
		t.Error("report text reached the page unescaped")
	}
	if strings.Contains(src, "NaN") || strings.Contains(src, "Inf") {
		t.Error("a non-finite value reached the page")
	}
}

func TestWriteHTMLEmpty(t *testing.T) {
	src, doc := render(t, &Report{})
	svgs := 0
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "svg" {
			svgs++
		}
	})
	if svgs != 0 {
		t.Errorf("empty report drew %d charts", svgs)
	}
	for _, want := range []string{"No pretraining measurements.", "No kNN evaluations.", "No linear probe result.", "No throughput measurements."} {
		if !strings.Contains(src, want) {
			t.Errorf("empty report lacks %q", want)
		}
	}
	// Sections that exist but hold only missing values render as empty too.
	r := &Report{Pretrain: []Point{{Step: 1, Loss: Missing, LR: Missing, SamplesPerSec: Missing, DataWaitSeconds: Missing}},
		KNN: []KNNPoint{{Epoch: 1, Top1: Missing, Top5: Missing}}, Linear: &Linear{Top1: Missing, Top5: Missing, Loss: Missing}}
	src, _ = render(t, r)
	if strings.Contains(src, "<svg") || strings.Contains(src, "NaN") {
		t.Error("all-missing measurements drew a chart or printed NaN")
	}
}

func TestChartGaps(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name     string
		y        []float64
		segments int // M commands in the path
		lines    int // L commands
		dots     int
	}{
		{"continuous", []float64{1, 2, 3, 4}, 1, 3, 4},
		{"gap in the middle", []float64{1, 2, nan, 4, 5}, 2, 2, 4},
		{"infinity is a gap", []float64{1, inf, 3, 4}, 2, 1, 3},
		{"leading and trailing gaps", []float64{nan, 2, 3, nan}, 1, 1, 2},
		{"isolated point", []float64{1, nan, 3, nan, 5, 6}, 3, 1, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := make([]float64, len(tt.y))
			for i := range x {
				x[i] = float64(i * 10)
			}
			c := lineChart("t", "step", "v", nil, numLabel, series{"v", "#000", x, tt.y})
			if c == nil {
				t.Fatal("no chart")
			}
			d := c.Lines[0].D
			if got := strings.Count(d, "M"); got != tt.segments {
				t.Errorf("path %q has %d segments, want %d", d, got, tt.segments)
			}
			if got := strings.Count(d, "L"); got != tt.lines {
				t.Errorf("path %q has %d line commands, want %d", d, got, tt.lines)
			}
			if got := len(c.Lines[0].Dots); got != tt.dots {
				t.Errorf("%d dots, want %d", got, tt.dots)
			}
			if strings.Contains(d, "NaN") || strings.Contains(d, "Inf") {
				t.Errorf("path %q holds a non-finite coordinate", d)
			}
		})
	}
	if c := lineChart("t", "x", "y", nil, numLabel, series{"v", "#000", []float64{1, 2}, []float64{nan, inf}}); c != nil {
		t.Error("a series without finite points drew a chart")
	}
	// Dense series mark only the points a path cannot show.
	x, y := make([]float64, 100), make([]float64, 100)
	for i := range x {
		x[i], y[i] = float64(i), float64(i%7)
	}
	y[50], y[52] = nan, nan
	if c := lineChart("t", "x", "y", nil, numLabel, series{"v", "#000", x, y}); len(c.Lines[0].Dots) != 1 {
		t.Errorf("dense series has %d dots, want the one isolated point", len(c.Lines[0].Dots))
	}
}

func TestNiceRange(t *testing.T) {
	tests := []struct {
		lo, hi          float64
		wlo, whi, wstep float64
	}{
		{0, 980, 0, 1000, 200},
		{1.2, 7.4, 0, 8, 2},
		{0, 0.5, 0, 0.5, 0.1},
		{860, 940, 860, 940, 20},
		{5, 5, 4.4, 5.6, 0.2},
		{0, 0, -1, 1, 0.5},
		{-3, 2, -3, 2, 1},
		{-3.5, 2, -4, 2, 2},
	}
	for _, tt := range tests {
		lo, hi, step := niceRange(tt.lo, tt.hi)
		if math.Abs(lo-tt.wlo) > 1e-9 || math.Abs(hi-tt.whi) > 1e-9 || math.Abs(step-tt.wstep) > 1e-9 {
			t.Errorf("niceRange(%v, %v) = %v, %v, %v; want %v, %v, %v", tt.lo, tt.hi, lo, hi, step, tt.wlo, tt.whi, tt.wstep)
		}
	}
	labels := []struct {
		v, step float64
		want    string
	}{
		{0.30000000000000004, 0.1, "0.3"},
		{0.025, 0.005, "0.025"},
		{1e-17, 0.1, "0"},
		{400, 200, "400"},
		{2e-5, 1e-5, "2e-05"},
	}
	for _, tt := range labels {
		if got := numLabel(tt.v, tt.step); got != tt.want {
			t.Errorf("numLabel(%v, %v) = %q, want %q", tt.v, tt.step, got, tt.want)
		}
	}
}

func TestManyClasses(t *testing.T) {
	tests := []struct {
		classes       int
		heatmap, bars bool
	}{
		{3, true, true},
		{60, false, true},
		{150, false, false},
	}
	for _, tt := range tests {
		l := &Linear{Top1: 0.5, Top5: 0.8, Loss: 1}
		for i := range tt.classes {
			row := make([]int, tt.classes)
			row[i] = 1
			l.Confusion = append(l.Confusion, row)
			l.PerClass = append(l.PerClass, 1)
		}
		v := newView(&Report{Linear: l})
		if (v.Heatmap != nil) != tt.heatmap || (v.Bars != nil) != tt.bars {
			t.Errorf("%d classes: heatmap %v bars %v, want %v %v", tt.classes, v.Heatmap != nil, v.Bars != nil, tt.heatmap, tt.bars)
		}
		if want := 2 - btoi(tt.heatmap) - btoi(tt.bars); len(v.Omitted) != want {
			t.Errorf("%d classes: %d omission notes, want %d", tt.classes, len(v.Omitted), want)
		}
		render(t, &Report{Linear: l})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func FuzzReadJSON(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sample()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"pretrain": [{"step": 1, "loss": null}], "knn": [{"epoch": 2, "top1": 2}]}`))
	f.Add([]byte(`{"linear": {"classes": ["a"], "confusion": [[-1]]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadJSON(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := WriteHTML(io.Discard, r); err != nil {
			t.Fatalf("valid report failed to render: %v", err)
		}
		if err := WriteJSON(io.Discard, r); err != nil {
			t.Fatalf("valid report failed to encode: %v", err)
		}
	})
}

func TestSaveWritesBothFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	rep := &Report{RunID: "r", Dataset: "d", Method: "supcon"}
	f, err := Save(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(f.HTMLPath) || f.HTMLPath != filepath.Join(dir, "report.html") {
		t.Errorf("html path %q", f.HTMLPath)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil || !bytes.Equal(b, f.JSON) {
		t.Fatalf("report.json: %v", err)
	}
	back, err := ReadJSON(bytes.NewReader(b))
	if err != nil || back.RunID != "r" {
		t.Fatalf("read back %+v, %v", back, err)
	}
	if st, err := os.Stat(f.HTMLPath); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("report.html: %v", err)
	}
}
