package decode

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/messages"
)

// A decoded shard is the decode cache of one data shard: the decoded
// pixels of its members, written whole by BuildShard with one Put, so that
// it is either absent or complete (S3 makes an object visible only whole;
// there is no append) and two builders of the same shard each write a
// complete object. Its layout:
//
//	"SFPS" 1, the settings it was decoded with: resize_shorter (u32),
//	  gray (u8); member count n (u32)
//	n index entries, in data offset order: data offset (u64), data length
//	  (u32), record length (u32, 0: not cached), CRC-32C of the record (u32)
//	the records, in index order: cache entries as one object's (SFPX)
//
// A record's place is the sum of the record lengths before it, so a run of
// data shard neighbours is a run of records too: decode reads a run's
// records with one ranged GET, after the index, read once per worker and
// shard.
var pxShardMagic = [5]byte{'S', 'F', 'P', 'S', 1}

const (
	pxShardHead  = len(pxShardMagic) + 4 + 1 + 4
	pxIndexEntry = 8 + 4 + 4 + 4
	// maxPxMembers bounds the index a header may announce: a 256 MB shard
	// of 300-byte digits holds under a million members.
	maxPxMembers = 1 << 22
)

var errPxShard = errors.New("decode: malformed decoded shard")

// pxEntry is a member's record in a decoded shard.
type pxEntry struct {
	dataOff     uint64
	dataLen     uint32
	recLen, crc uint32
	recOff      int64
}

// pxSettings is the header's stamp of the settings that shape pixels (the
// key names them too; the stamp keeps an object copied or written under
// another key from passing for this one's).
func (s *Stage) pxSettings() []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(s.cfg.ResizeShorter))
	if s.cfg.Gray {
		return append(b, 1)
	}
	return append(b, 0)
}

// pxIndex is a decoded shard's index, in data offset order.
type pxIndex []pxEntry

// find returns the entry of the member at off with length n.
func (ix pxIndex) find(off uint64, n uint32) (pxEntry, bool) {
	i, ok := slices.BinarySearchFunc(ix, off, func(e pxEntry, off uint64) int { return cmp.Compare(e.dataOff, off) })
	if !ok || ix[i].dataLen != n || ix[i].recLen == 0 {
		return pxEntry{}, false
	}
	return ix[i], true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// pxShards is what a Stage knows of the decoded shards: the indexes it
// read, and the shards it found absent (or malformed) in an epoch, looked
// for again in the next.
type pxShards struct {
	mu     sync.Mutex
	index  map[string]pxIndex
	absent map[string]uint32
}

// pxIndexOf returns the index of shard's decoded shard, reading it on first
// use; nil when there is none to use in this epoch.
func (s *Stage) pxIndexOf(ctx context.Context, shard string, epoch uint32) pxIndex {
	p := &s.px
	p.mu.Lock()
	ix, ok := p.index[shard]
	a, gone := p.absent[shard]
	p.mu.Unlock()
	if ok {
		return ix
	}
	if gone && a == epoch {
		return nil
	}
	ix, err := s.readPxIndex(ctx, s.cacheKey(shard, ".pxs"))
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err == nil:
		p.index[shard] = ix
		delete(p.absent, shard)
	case errors.Is(err, errPxShard), s.isNotFound != nil && s.isNotFound(err), s.isRange != nil && s.isRange(err):
		p.absent[shard] = epoch
	} // a transient error: read it again on the next run
	return ix
}

// dropPx forgets shard's index for the rest of epoch: its decoded shard is
// shorter than its index said (truncated, or replaced since).
func (s *Stage) dropPx(shard string, epoch uint32) {
	s.px.mu.Lock()
	defer s.px.mu.Unlock()
	delete(s.px.index, shard)
	s.px.absent[shard] = epoch
}

// readPxIndex reads a decoded shard's index: two ranged GETs.
func (s *Stage) readPxIndex(ctx context.Context, key string) (pxIndex, error) {
	head, err := s.cache.GetRange(ctx, key, 0, int64(pxShardHead))
	if err != nil {
		return nil, err
	}
	if len(head) != pxShardHead || [5]byte(head[:5]) != pxShardMagic {
		return nil, fmt.Errorf("%w: %q: bad header", errPxShard, key)
	}
	if !bytes.Equal(head[5:10], s.pxSettings()) {
		return nil, fmt.Errorf("%w: %q: decoded with other settings", errPxShard, key)
	}
	n := int64(binary.LittleEndian.Uint32(head[10:]))
	if n > maxPxMembers {
		return nil, fmt.Errorf("%w: %q: %d members", errPxShard, key, n)
	}
	b, err := s.cache.GetRange(ctx, key, int64(pxShardHead), n*pxIndexEntry)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != n*pxIndexEntry {
		return nil, fmt.Errorf("%w: %q: short index", errPxShard, key)
	}
	ix := make(pxIndex, n)
	at := int64(pxShardHead) + n*pxIndexEntry
	for i := range ix {
		e := b[i*pxIndexEntry:]
		ix[i] = pxEntry{dataOff: binary.LittleEndian.Uint64(e), dataLen: binary.LittleEndian.Uint32(e[8:]),
			recLen: binary.LittleEndian.Uint32(e[12:]), crc: binary.LittleEndian.Uint32(e[16:]), recOff: at}
		if i > 0 && ix[i].dataOff <= ix[i-1].dataOff {
			return nil, fmt.Errorf("%w: %q: index out of order", errPxShard, key)
		}
		at += int64(ix[i].recLen)
	}
	return ix, nil
}

// pxSpan is records of a run that one ranged GET of the decoded shard reads.
type pxSpan struct {
	off, n int64
	data   []byte
	failed bool
}

// pxAt is a member's record and the span that reads it.
type pxAt struct {
	e    pxEntry
	span *pxSpan
}

// planPx groups the records of r's members that shard's decoded shard
// holds into spans, as Plan groups members: neighbours at most maxRunGap
// apart, a span within maxRunBytes (a record larger is read alone).
func (s *Stage) planPx(ctx context.Context, r *run, epoch uint32) {
	r.px = map[uint64]pxAt{}
	ix := s.pxIndexOf(ctx, r.key, epoch)
	if ix == nil {
		return
	}
	var cur *pxSpan
	for _, m := range r.members { // in offset order, so in record order
		e, ok := ix.find(m.off, m.n)
		if !ok {
			continue
		}
		end := e.recOff + int64(e.recLen)
		if cur == nil || e.recOff-(cur.off+cur.n) > maxRunGap || end-cur.off > maxRunBytes {
			cur = &pxSpan{off: e.recOff}
		}
		cur.n = end - cur.off
		r.px[m.off] = pxAt{e, cur}
	}
}

// decodedMember returns task's image from its data shard's decoded shard,
// reading the records of r's members with one GET per span on first use;
// ok is false when it is not there to be used (no decoded shard, the
// member not in it, a failed GET, a record that fails its CRC or does not
// parse): the member is then fetched and decoded from its data shard.
func (s *Stage) decodedMember(ctx context.Context, task messages.DecodeTask, r *run) (img imgdecode.Image, ok bool) {
	if r == nil {
		r = &run{key: task.Key, members: []member{{task.Offset, task.Length}}}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.px == nil {
		s.planPx(ctx, r, task.Epoch)
	}
	at, ok := r.px[task.Offset]
	if !ok || at.e.dataLen != task.Length {
		return imgdecode.Image{}, false
	}
	sp := at.span
	if sp.data == nil && !sp.failed {
		data, err := s.cache.GetRange(ctx, s.cacheKey(r.key, ".pxs"), sp.off, sp.n)
		switch {
		case err == nil && int64(len(data)) == sp.n:
			sp.data = data
		case err == nil, s.isNotFound != nil && s.isNotFound(err), s.isRange != nil && s.isRange(err):
			sp.failed = true
			s.dropPx(r.key, task.Epoch)
		default:
			sp.failed = true
		}
	}
	if sp.failed {
		return imgdecode.Image{}, false
	}
	from := at.e.recOff - sp.off
	rec := sp.data[from : from+int64(at.e.recLen)]
	if crc32.Checksum(rec, castagnoli) != at.e.crc {
		return imgdecode.Image{}, false
	}
	img, err := decodeCacheEntry(rec, s.cfg.MaxPixels)
	return img, err == nil
}

// ErrNoCache: BuildShard on a Stage whose Config.Cache is off.
var ErrNoCache = errors.New("decode: the cache is off")

// BuildShard decodes the members of one data shard (tasks naming the
// shard, as the manifest's entries make them; at most one per offset) as
// HandleTask would, and writes the shard's decoded shard with one Put,
// replacing any earlier one. A member that fails for good (undecodable,
// past the shard's end) is left out of it, counted in skipped: decode
// then reads it from the data shard and dead-letters it with its reason,
// as without the cache. A transient failure returns an error and writes
// nothing. The decoded shard is built in memory: about the decoded size of
// the shard's images.
func (s *Stage) BuildShard(ctx context.Context, tasks []messages.DecodeTask) (skipped int, err error) {
	if s.cache == nil {
		return 0, ErrNoCache
	}
	if len(tasks) == 0 {
		return 0, nil
	}
	tasks = slices.Clone(tasks)
	slices.SortFunc(tasks, func(a, b messages.DecodeTask) int { return cmp.Compare(a.Offset, b.Offset) })
	shard := tasks[0].Key
	for i, t := range tasks {
		if t.Key != shard || t.Length == 0 || i > 0 && t.Offset == tasks[i-1].Offset {
			return 0, fmt.Errorf("%w: BuildShard takes distinct members of one shard: %q@%d+%d", ErrInvalidTask, t.Key, t.Offset, t.Length)
		}
	}
	if s.allow != nil {
		if err := s.allow(shard); err != nil {
			return 0, fmt.Errorf("%w: shard %q: %w", ErrInvalidTask, shard, err)
		}
	}
	if len(tasks) > maxPxMembers {
		return 0, fmt.Errorf("%w: shard %q has %d members, at most %d", ErrInvalidTask, shard, len(tasks), maxPxMembers)
	}
	idxEnd := pxShardHead + len(tasks)*pxIndexEntry
	b := make([]byte, idxEnd)
	copy(b, pxShardMagic[:])
	copy(b[5:], s.pxSettings())
	binary.LittleEndian.PutUint32(b[10:], uint32(len(tasks)))
	for i, t := range s.Plan(tasks) {
		at := pxShardHead + i*pxIndexEntry // b grows: index it afresh
		binary.LittleEndian.PutUint64(b[at:], t.Offset)
		binary.LittleEndian.PutUint32(b[at+8:], t.Length)
		img, err := s.decodeTask(ctx, t.DecodeTask, t.run)
		switch {
		case errors.Is(err, messages.ErrPermanent):
			skipped++
			continue // record length 0
		case err != nil:
			return 0, err
		}
		start := len(b)
		b = appendCacheEntry(b, img)
		binary.LittleEndian.PutUint32(b[at+12:], uint32(len(b)-start))
		binary.LittleEndian.PutUint32(b[at+16:], crc32.Checksum(b[start:], castagnoli))
	}
	if err := s.cache.Put(ctx, s.cacheKey(shard, ".pxs"), b); err != nil {
		return 0, fmt.Errorf("decode: write the decoded shard of %q: %w", shard, err)
	}
	return skipped, nil
}

// BuildReport is what BuildShards did.
type BuildReport struct {
	Shards  int // data shards among the tasks
	Built   int // decoded shards written
	Kept    int // decoded shards already there, indexing exactly their shard's members
	Skipped int // members left out of the decoded shards written (BuildShard)
}

// BuildShards builds the decoded shard of every data shard among tasks
// (the shard members of a data set's manifest; loose objects are left to
// the per-object cache) that has none indexing exactly its members,
// workers shards at a time; each in memory (BuildShard). It stops at the
// first error; the decoded shards written until then stay (each is whole)
// and a re-run keeps them.
func (s *Stage) BuildShards(ctx context.Context, tasks []messages.DecodeTask, workers int) (BuildReport, error) {
	if s.cache == nil {
		return BuildReport{}, ErrNoCache
	}
	byShard := map[string][]messages.DecodeTask{}
	var shards []string
	for _, t := range tasks {
		if t.Length == 0 {
			continue
		}
		if _, ok := byShard[t.Key]; !ok {
			shards = append(shards, t.Key)
		}
		byShard[t.Key] = append(byShard[t.Key], t)
	}
	rep := BuildReport{Shards: len(shards)}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan string)
	)
	for range max(workers, 1) {
		wg.Go(func() {
			for shard := range next {
				members := byShard[shard]
				slices.SortFunc(members, func(a, b messages.DecodeTask) int { return cmp.Compare(a.Offset, b.Offset) })
				kept := s.indexes(ctx, shard, members)
				skipped, err := 0, error(nil)
				if !kept {
					skipped, err = s.BuildShard(ctx, members)
				}
				mu.Lock()
				switch {
				case err != nil:
					cancel(err)
				case kept:
					rep.Kept++
				default:
					rep.Built++
					rep.Skipped += skipped
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, shard := range shards {
		select {
		case next <- shard:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return rep, err
	}
	return rep, nil
}

// indexes reports whether shard's decoded shard exists, its index lists
// exactly members (sorted by offset), as a build of them would, and it is
// as long as its index says (not truncated). Damage within its records
// is not looked for here: decode finds it per record.
func (s *Stage) indexes(ctx context.Context, shard string, members []messages.DecodeTask) bool {
	key := s.cacheKey(shard, ".pxs")
	ix, err := s.readPxIndex(ctx, key)
	if err != nil || len(ix) != len(members) || len(ix) == 0 {
		return false
	}
	for i, e := range ix {
		if e.dataOff != members[i].Offset || e.dataLen != members[i].Length {
			return false
		}
	}
	last := ix[len(ix)-1]
	_, err = s.cache.GetRange(ctx, key, last.recOff+int64(last.recLen)-1, 1)
	return err == nil
}
