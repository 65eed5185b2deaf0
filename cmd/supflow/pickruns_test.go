package main

import (
	"slices"
	"testing"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/store"
)

// monitorPicks are the kNN monitor's bank (bank of the train split) and
// query (bank/2 of the test split) of the sharded data set d, picked as
// train.go picks them (Dataset.Take: a stretch of shard neighbours), and
// as Select's scatter picked them before (what Take still does to a loose
// split).
func monitorPicks(d dataset.Dataset, bank int, seed uint64) map[string][2][]dataset.Entry {
	scatter := func(split string, limit int) []dataset.Entry {
		entries := d.Split(split)
		labels := make([]int, len(entries))
		for i, e := range entries {
			labels[i] = int(e.Label)
		}
		var out []dataset.Entry
		for _, i := range dataset.Select(labels, limit, seed) {
			out = append(out, entries[i])
		}
		return out
	}
	return map[string][2][]dataset.Entry{
		"stretch": {d.Take("train", bank, seed), d.Take("test", bank/2, seed)},
		"scatter": {scatter("train", bank), scatter("test", bank/2)},
	}
}

// shardsOf counts the shards entries lie in.
func shardsOf(entries []dataset.Entry) int {
	keys := map[string]bool{}
	for _, e := range entries {
		keys[e.Shard] = true
	}
	return len(keys)
}

// monitorGets scores a kNN monitor of bank and query with the
// evaluation's loader (decode's planned path) on objects and returns the
// GETs the score made.
func monitorGets(t testing.TB, objects *countingObjects, bank, query []dataset.Entry) int64 {
	t.Helper()
	dec := countedDecoder(t, objects, &storetest.CountingBlobs{Blobs: store.Blobs{C: objects.Client}}, true, false)
	sc := evaluate.Scoring{Size: 28, Channels: 1, Classes: 10, Workers: 4, KNN: probe.KNNConfig{K: 5}} // chunks of 1,024, as cmd/supflow's
	mon, err := evaluate.NewMonitor(sc, "r", bank, query, evaluate.Planned(dec.Plan, dec.HandleTask), pixelEncoder{})
	if err != nil {
		t.Fatal(err)
	}
	before := objects.gets.Load()
	if _, err := mon.Score(t.Context()); err != nil {
		t.Fatal(err)
	}
	return objects.gets.Load() - before
}

// TestMonitorPickShardRuns: the kNN monitor's bank, 200 of 2,000 MNIST
// digits ingested in shards of about 100, lies in at most 4 shards, where
// Select's scatter touches every shard; its query likewise. The monitor
// then makes at most one GET per shard it touches (each chunk of 1,024
// holds a whole pick), where the scatter makes one per shard of the
// splits (at this density, 1 member in 10, about 10 KiB apart, its picks
// still share runs; BenchmarkMonitorPick measures a sparser pick).
func TestMonitorPickShardRuns(t *testing.T) {
	c := storetest.New(t)
	rep, _, _ := ingestShardedMNIST(t, c, 2000, 1000, 100<<10)
	d := dataset.Dataset{Entries: rep.Entries}
	trainShards, testShards := shardsOf(d.Split("train")), shardsOf(d.Split("test"))
	if trainShards < 15 {
		t.Fatalf("the train split is in %d shards, want about 20", trainShards)
	}
	objects := &countingObjects{Client: c}
	picks := monitorPicks(d, 200, 1)
	for _, name := range []string{"stretch", "scatter"} {
		bank, query := picks[name][0], picks[name][1]
		gets := monitorGets(t, objects, bank, query)
		t.Logf("%s: bank %d in %d of %d shards, query %d in %d of %d; %d GETs per score",
			name, len(bank), shardsOf(bank), trainShards, len(query), shardsOf(query), testShards, gets)
		if len(bank) != 200 || len(query) != 100 {
			t.Fatalf("%s: bank %d, query %d", name, len(bank), len(query))
		}
		switch name {
		case "stretch":
			if shardsOf(bank) > 4 || shardsOf(query) > 4 || gets > int64(shardsOf(bank)+shardsOf(query)) {
				t.Errorf("stretch: bank in %d shards, query in %d, %d GETs; want at most 4 shards each and a GET per shard",
					shardsOf(bank), shardsOf(query), gets)
			}
		case "scatter":
			if shardsOf(bank) != trainShards {
				t.Errorf("scatter: bank in %d of %d shards; the test compares with a pick that touches all", shardsOf(bank), trainShards)
			}
		}
	}
}

// BenchmarkMonitorPick scores the kNN monitor at its defaults
// (train.knn_samples 1,000: a bank of 1,000 train and a query of 500 test
// images) on all of MNIST (60,000 + 10,000 digits, ~1 KiB tar members)
// ingested in shards of 128 MiB on the embedded S3 endpoint, with the
// bank and query of a limited pick (Dataset.Take: a stretch) and of
// Select's scatter, and reports the GETs of a score. Run it with
// -benchtime 3x.
func BenchmarkMonitorPick(b *testing.B) {
	c := storetest.New(b)
	rep, _, _ := ingestShardedMNIST(b, c, 0, 0, 128<<20)
	d := dataset.Dataset{Entries: rep.Entries}
	objects := &countingObjects{Client: c}
	picks := monitorPicks(d, 1000, 1)
	for _, name := range []string{"stretch", "scatter"} {
		train, bank := d.Split("train"), picks[name][0]
		at := func(e dataset.Entry) int { return slices.Index(train, e) }
		b.Logf("%s: the bank's %d lie in %d shards, from entry %d to %d of the train split's %d",
			name, len(bank), shardsOf(bank), at(bank[0]), at(bank[len(bank)-1]), len(train))
		b.Run(name, func(b *testing.B) {
			var gets int64
			for b.Loop() {
				gets += monitorGets(b, objects, picks[name][0], picks[name][1])
			}
			b.ReportMetric(float64(gets)/float64(b.N), "GETs/score")
		})
	}
}
