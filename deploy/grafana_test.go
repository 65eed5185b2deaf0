package deploy_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/metrics"
)

// names is a Registerer that records the metric names of what is
// registered on it, labelled or not, before passing it on.
type names struct {
	prometheus.Registerer
	seen map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (n *names) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			n.seen[m[1]] = true
		}
	}
	return n.Registerer.Register(c)
}

func (n *names) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := n.Register(c); err != nil {
			panic(err)
		}
	}
}

// TestGrafanaDashboardQueriesExistingMetrics: every supflow_* metric the
// dashboard's queries name is one a supflow process registers (trainer,
// evaluator, bus router; a histogram's _bucket, _sum and _count series
// count as its own), so a renamed metric cannot leave a panel empty.
func TestGrafanaDashboardQueriesExistingMetrics(t *testing.T) {
	reg := &names{Registerer: metrics.NewRegistry(), seen: map[string]bool{}}
	if _, err := metrics.NewTrainer(reg, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewEvaluator(reg, "r"); err != nil {
		t.Fatal(err)
	}
	srv, err := bus.StartEmbedded(t.Context(), bus.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b, err := bus.Connect(t.Context(), bus.Config{URL: srv.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.NewRouter(bus.RouterConfig{Registerer: reg}); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile("grafana/supflow.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`\bsupflow_[a-z0-9_]+`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range metric.FindAllString(tg.Expr, -1) {
				queried++
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if s, ok := strings.CutSuffix(name, suffix); ok && reg.seen[s] {
						base = s
					}
				}
				if !reg.seen[base] {
					t.Errorf("panel %q queries %s, which no supflow process registers", p.Title, name)
				}
			}
		}
	}
	if queried < 10 {
		t.Errorf("the dashboard queries only %d metrics", queried)
	}
	for _, want := range []string{"supflow_train_loss", "supflow_train_learning_rate", "supflow_train_samples_total",
		"supflow_train_data_wait_seconds_total", "supflow_train_epoch", "supflow_train_knn_top1",
		"supflow_train_checkpoint_timestamp_seconds", "supflow_eval_accuracy"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the dashboard shows no %s", want)
		}
	}
}
