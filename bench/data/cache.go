package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/stages/feeder"
	"github.com/supflow/supflow/store"
)

// cachedRuns are the feeder.shard_run values the warm-cache variants run
// with, at bus.batch cachedBatch.
var cachedRuns = []int{16, feeder.DefaultShardRun}

var cachedBatch = defaultBatch

// warmCache runs a case's sharded variants with decode.cache on and every
// decoded shard built first (as ingest builds them), so decode reads
// decoded pixels, one ranged GET per run: <case>_sharded_run<n>_cached.
// vs work is against the same decode + augment work as the other rows;
// vs augment against augment alone, what a warm epoch has left to do.
func warmCache(ctx context.Context, objects *store.Client, name string, dcfg imgdecode.Config, sh sharded, aug *augment.Stage, work float64) error {
	var rows []string
	for _, run := range cachedRuns {
		for _, suffix := range []string{"", "_fused"} {
			rows = append(rows, fmt.Sprintf("%s_sharded_run%d_cached%s_batch%d", name, run, suffix, cachedBatch))
		}
	}
	if !sel.anyMatch(rows...) {
		return nil
	}
	members := sh.members
	dec, err := decode.New(decode.Config{Config: dcfg, Cache: true}, decode.Deps{Objects: objects,
		IsNotFound:   func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		IsOutOfRange: func(err error) bool { return errors.Is(err, store.ErrOutOfRange) },
		Cache:        store.Blobs{C: objects}, CachePrefix: "cache/" + name})
	if err != nil {
		return err
	}
	rep, err := dec.BuildShards(ctx, members, decodeWorkers)
	if err != nil {
		return err
	}
	imgs := make([]messages.Image, len(members))
	for i, t := range members {
		if imgs[i], err = dec.Handle(ctx, t); err != nil {
			return err
		}
	}
	augOnly, err := direct(ctx, len(imgs), func(ctx context.Context, i int) error {
		_, err := aug.Handle(ctx, imgs[i])
		return err
	})
	if err != nil {
		return err
	}
	augment := augOnly.cpu / float64(len(imgs))
	fmt.Printf("%-34s %d decoded shards built\n", name+" decode cache:", rep.Built)
	for _, run := range cachedRuns {
		tasks, err := sh.ordered(run)
		if err != nil {
			return err
		}
		for _, fused := range []bool{false, true} { // separate workers, then decode --augment
			variant := fmt.Sprintf("%s_sharded_run%d_cached", name, run)
			if fused {
				variant += "_fused"
			}
			row := fmt.Sprintf("%s_batch%d", variant, cachedBatch)
			if !sel.match(row) {
				continue
			}
			r, err := overBus(ctx, row, dec, aug, tasks, sh.sizes(), bus.Limits{Batch: cachedBatch, Storage: bus.StorageFile}, fused)
			if err != nil {
				return fmt.Errorf("%s: %w", variant, err)
			}
			per := r.cpu / float64(len(tasks))
			fmt.Printf("%-34s %10.0f %14.3f %9.0f%% %7.2fx  %s (vs augment alone %.2fx)\n", fmt.Sprintf("%s bus, batch %d", variant, cachedBatch),
				r.rate, 1e3*per, 100*(1-work/per), per/work, r.load, per/augment)
			fmt.Printf("PIPELINE case=%s_batch%d samples_per_s=%.0f cpu_ms_per_sample=%.3f bus_share=%.2f vs_work=%.2f vs_augment=%.2f\n",
				variant, cachedBatch, r.rate, 1e3*per, 1-work/per, per/work, per/augment)
		}
	}
	fmt.Printf("%-34s %10.0f %14.3f %10s %8s  %s\n", name+" work: augment alone", augOnly.rate, 1e3*augment, "-", fmt.Sprintf("%.2fx", augment/work), augOnly.load)
	return nil
}
