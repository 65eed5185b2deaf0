package dataset

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/supflow/supflow/store"
)

// ShardsDir is the folder, under the data set prefix, of the shards a
// sharded ingest writes (Options.ShardBytes).
const ShardsDir = "shards"

// shardKey is the key of shard n of split, e.g. shards/train-000003.tar.
func shardKey(prefix, split string, n int) string {
	k := fmt.Sprintf("%s/%s-%06d.tar", ShardsDir, split, n)
	if prefix != "" {
		k = prefix + "/" + k
	}
	return k
}

// packer packs the encoded images of a sharded ingest, in the order read
// (mixed: ReadOptions.Mix), into tar shards of one split each and about
// Options.ShardBytes each, and uploads each shard when it is full; an
// unchanged shard (same SHA-256 in its metadata, same size) is not uploaded
// again. Shards are plain tar archives (ustar; PAX headers for names over
// 100 bytes), so tar and WebDataset read them; decode reads a member's
// bytes with one ranged GET at the offset the manifest entry gives.
type packer struct {
	b    Bucket
	opts Options

	split   string // split of the open shard
	n       int    // its number within the split
	buf     bytes.Buffer
	tw      *tar.Writer
	members []int // its images, indexes in results, whose entries get the shard key on flush

	results                  []result // every result, in the order read
	shards, written, skipped int      // shards written or found unchanged; images in them
}

// add appends r to the results and, unless it was refused, its image
// (r.data) to the open shard, starting a new shard at a new split or when
// the image would take the shard over the size.
func (p *packer) add(ctx context.Context, r result) error {
	p.results = append(p.results, r)
	if r.refused != nil {
		return nil
	}
	if p.tw != nil && (r.entry.Split != p.split || int64(p.buf.Len()+512+len(r.data)) > p.opts.ShardBytes) {
		if err := p.flush(ctx); err != nil {
			return err
		}
		if r.entry.Split == p.split {
			p.n++
		}
	}
	if p.tw == nil {
		if r.entry.Split != p.split {
			p.split, p.n = r.entry.Split, 0
		}
		p.buf.Reset()
		p.tw = tar.NewWriter(&p.buf)
	}
	// The member is named as the loose object would be, under the prefix;
	// a zero ModTime and fixed mode keep the bytes a function of the images.
	name := strings.TrimPrefix(r.entry.Key, p.opts.Prefix+"/")
	if err := p.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(r.data)), Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("dataset: shard member %s: %w", name, err)
	}
	i := len(p.results) - 1
	p.results[i].entry.Offset = int64(p.buf.Len())
	p.results[i].data = nil
	if _, err := p.tw.Write(r.data); err != nil {
		return fmt.Errorf("dataset: shard member %s: %w", name, err)
	}
	p.members = append(p.members, i)
	return nil
}

// flush closes the open shard and uploads it unless it is already stored.
func (p *packer) flush(ctx context.Context) error {
	if p.tw == nil {
		return nil
	}
	if err := p.tw.Close(); err != nil {
		return fmt.Errorf("dataset: close shard: %w", err)
	}
	p.tw = nil
	key := shardKey(p.opts.Prefix, p.split, p.n)
	sum := sha256.Sum256(p.buf.Bytes())
	digest := hex.EncodeToString(sum[:])
	info, err := p.b.Stat(ctx, key)
	switch {
	case err == nil && info.Metadata[MetaSHA256] == digest && info.Size == int64(p.buf.Len()):
		p.skipped += len(p.members)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("dataset: stat %s: %w", key, err)
	default:
		err := p.b.Put(ctx, key, p.buf.Bytes(), store.PutOptions{ContentType: "application/x-tar", Metadata: map[string]string{MetaSHA256: digest}})
		if err != nil {
			return fmt.Errorf("dataset: put %s: %w", key, err)
		}
		p.written += len(p.members)
	}
	for _, i := range p.members {
		p.results[i].entry.Shard = key
	}
	p.members = p.members[:0]
	p.shards++
	return nil
}
