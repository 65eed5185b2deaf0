package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/runs"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/store"
)

// checkpointKey is --checkpoint, checked, or the run's last checkpoint.
func checkpointKey(e *env) (string, error) {
	key := e.opts.checkpoint
	if key == "" {
		return runs.Checkpoint(e.cfg.Run.ID, runs.Last), nil
	}
	if err := store.ValidKey(key); err != nil {
		return "", usageError{fmt.Errorf("--checkpoint: %w", err)}
	}
	return key, nil
}

// runEmbed writes the frozen encoder's features of a split.
func runEmbed(ctx context.Context, e *env) error {
	cfg := e.cfg
	key, err := checkpointKey(e)
	if err != nil {
		return err
	}
	if e.opts.limit < 0 {
		return usageError{fmt.Errorf("--limit %d: want a count >= 0 (0 = the whole split)", e.opts.limit)}
	}
	s, err := open(ctx, e, "embed", false)
	if err != nil {
		return err
	}
	defer s.close()
	d, err := loadDataset(ctx, cfg, s.store)
	if err != nil {
		return err
	}
	split := e.opts.split
	if split == "" {
		split = cfg.Dataset.TestSplit
	}
	entries := d.Take(split, e.opts.limit, uint64(cfg.Run.Seed))
	if len(entries) == 0 {
		return fmt.Errorf("the manifest has no %q split to embed", split)
	}
	tr, err := newEngine(cfg, e.getenv, s, d)
	if err != nil {
		return err
	}
	load, err := newLoader(cfg, s.store)
	if err != nil {
		return err
	}
	emb, meta, err := evaluate.EmbedCheckpoint(ctx, scoring(cfg, d), cfg.Run.ID, key, entries, e.opts.head,
		evaluate.Deps{Engine: tr, Load: load, Store: s.store})
	if err != nil {
		return err
	}
	for _, sk := range emb.Skipped {
		s.log.Warn("sample left out of the embedding", "key", sk.Key, "error", sk.Err)
	}
	dir := e.opts.outDir
	if dir == "" {
		dir = filepath.Join(cfg.Run.WorkDir, cfg.Run.ID, "embeddings", split)
	}
	if err := emb.Write(dir, map[string]string{
		"checkpoint": key, "epoch": strconv.Itoa(meta.Epoch), "split": split, "dataset": cfg.Dataset.Prefix,
		"layer": "encoder", "arch": cfg.Model.Arch, "size": strconv.Itoa(cfg.Augment.Size),
	}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "embedded %d samples of split %s (%d left out) with %s (epoch %d): %d features each\n%s\n",
		emb.Len(), printable(split), len(emb.Skipped), printable(key), meta.Epoch, emb.Dim, printable(dir))
	return nil
}

// runExport writes the checkpoint's encoder alone for PyTorch.
func runExport(ctx context.Context, e *env) error {
	key, err := checkpointKey(e)
	if err != nil {
		return err
	}
	if e.opts.outFile == "" {
		return usageError{fmt.Errorf("--out: the file to write is required")}
	}
	s, err := open(ctx, e, "export", false)
	if err != nil {
		return err
	}
	defer s.close()
	b, err := s.store.Get(ctx, key)
	if err != nil {
		return err
	}
	st, err := checkpoint.Decode(b)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", key, err)
	}
	out, err := checkpoint.ExportEncoder(st)
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.opts.outFile, out, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "encoder of %s (epoch %d, %d bytes): %s\n", printable(key), st.Meta.Epoch, len(out), printable(e.opts.outFile))
	return nil
}
