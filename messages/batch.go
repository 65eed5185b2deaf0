package messages

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxBatch bounds the samples of one batched message (docs/messages.md,
// version 3): with the sample ids first, a dead letter cut to MaxSampleOf
// bytes still names every sample of the largest batch.
const MaxBatch = 256

// batchVersion is the first version with the batch types.
const batchVersion = 3

// shardVersion is the first version whose DecodeTask and DecodeTask batch
// layouts carry a shard member's offset and length.
const shardVersion = 4

// Batched messages carry 2..MaxBatch samples of one run, epoch and split.
// One sample always travels as the single type (DecodeTask, Image,
// ViewGroup), byte for byte as before batches existed, so every message has
// one encoding. The Marshal*s functions write the single type for one
// sample and the batch type for more; the Unmarshal*s functions read both,
// so batches of any size, and single messages, may share a stream.

// MarshalDecodeTasks encodes ms (1..MaxBatch tasks of one run, epoch and
// split) as one message.
func MarshalDecodeTasks(ms []DecodeTask) ([]byte, error) {
	if len(ms) == 1 {
		return MarshalDecodeTask(ms[0])
	}
	if err := checkBatch(ms, func(m DecodeTask) batchHead { return batchHead{m.RunID, m.Epoch, m.Split} }, checkDecodeTask); err != nil {
		return nil, fmt.Errorf("messages: marshal DecodeTask batch: %w", err)
	}
	version, body := uint8(batchVersion), 0
	for _, m := range ms {
		body += 2 + len(m.Key)
		if m.Length > 0 {
			version = shardVersion
		}
	}
	if version == shardVersion {
		body += len(ms) * (8 + 4)
	}
	w := writeBatchHead(nil, typeDecodeTaskBatch, version, ms[0].RunID, ms[0].Epoch, ms[0].Split, len(ms), body,
		func(i int) (uint64, int32) { return ms[i].SampleID, ms[i].Label })
	for _, m := range ms {
		w.str(m.Key)
		if version == shardVersion {
			w.u64(m.Offset)
			w.u32(m.Length)
		}
	}
	return w.b, nil
}

// UnmarshalDecodeTasks decodes a DecodeTask or a DecodeTask batch.
func UnmarshalDecodeTasks(b []byte) ([]DecodeTask, error) {
	if !isType(b, typeDecodeTaskBatch) {
		m, err := UnmarshalDecodeTask(b)
		if err != nil {
			return nil, err
		}
		return []DecodeTask{m}, nil
	}
	r, h, err := readBatchHead(b, typeDecodeTaskBatch)
	if err != nil {
		return nil, err
	}
	ms := make([]DecodeTask, len(h.ids))
	members := false
	for i := range ms {
		ms[i] = DecodeTask{RunID: h.run, Epoch: h.epoch, SampleID: h.ids[i], Label: h.labels[i], Split: h.split,
			Key: r.str("key", MaxKeyLen)}
		if r.version == shardVersion {
			ms[i].Offset = r.u64("offset")
			ms[i].Length = r.u32("length")
			members = members || ms[i].Length > 0
		}
	}
	if r.version == shardVersion && !members && r.err == nil {
		// A batch of whole objects is written as version 3: one encoding each.
		r.err = fmt.Errorf("%w: version %d DecodeTask batch without a shard member", ErrInvalid, shardVersion)
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	for i, m := range ms {
		if err := checkDecodeTask(m); err != nil {
			return nil, fmt.Errorf("messages: unmarshal DecodeTask batch, sample %d: %w", i, err)
		}
	}
	return ms, nil
}

// MarshalImages encodes ms (1..MaxBatch images of one run, epoch and split;
// sizes may differ) as one message, copying the pixels once.
func MarshalImages(ms []Image) ([]byte, error) { return AppendImages(nil, ms) }

// AppendImages is MarshalImages appending the message to dst, so that a
// publisher can reuse its buffers (bus.HandleBatch).
func AppendImages(dst []byte, ms []Image) ([]byte, error) {
	if len(ms) == 1 {
		return appendImage(dst, ms[0])
	}
	if err := checkBatch(ms, func(m Image) batchHead { return batchHead{m.RunID, m.Epoch, m.Split} }, checkImage); err != nil {
		return nil, fmt.Errorf("messages: marshal Image batch: %w", err)
	}
	body := 0
	for _, m := range ms {
		body += 4 + 4 + 1 + 4 + len(m.Pixels)
	}
	if body > MaxPixelBytes {
		return nil, fmt.Errorf("messages: marshal Image batch: %w: %d bytes of images, max %d", ErrTooLarge, body, MaxPixelBytes)
	}
	w := writeBatchHead(dst, typeImageBatch, batchVersion, ms[0].RunID, ms[0].Epoch, ms[0].Split, len(ms), body,
		func(i int) (uint64, int32) { return ms[i].SampleID, ms[i].Label })
	for _, m := range ms {
		w.u32(m.Height)
		w.u32(m.Width)
		w.u8(m.Channels)
		w.bytes(m.Pixels)
	}
	return w.b, nil
}

// UnmarshalImages decodes an Image or an Image batch. Pixels alias b, as
// in UnmarshalImage.
func UnmarshalImages(b []byte) ([]Image, error) {
	if !isType(b, typeImageBatch) {
		m, err := UnmarshalImage(b)
		if err != nil {
			return nil, err
		}
		return []Image{m}, nil
	}
	r, h, err := readBatchHead(b, typeImageBatch)
	if err != nil {
		return nil, err
	}
	ms := make([]Image, len(h.ids))
	total := 0
	for i := range ms {
		m := Image{RunID: h.run, Epoch: h.epoch, SampleID: h.ids[i], Label: h.labels[i], Split: h.split}
		m.Height = r.u32("height")
		m.Width = r.u32("width")
		m.Channels = r.u8("channels")
		m.Pixels = r.pixels()
		ms[i] = m
		// The message aliases b, so this only bounds what a caller may
		// go on to allocate from it.
		if total += len(m.Pixels); r.err == nil && total > MaxPixelBytes {
			r.err = fmt.Errorf("%w: %v pixels are over %d bytes", ErrTooLarge, r.t, MaxPixelBytes)
		}
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	for i, m := range ms {
		if err := checkImage(m); err != nil {
			return nil, fmt.Errorf("messages: unmarshal Image batch, sample %d: %w", i, err)
		}
	}
	return ms, nil
}

// MarshalViewGroups encodes ms (1..MaxBatch view groups of one run, epoch,
// split and shape: views, height, width, channels) as one message, copying
// the pixels once.
func MarshalViewGroups(ms []ViewGroup) ([]byte, error) { return AppendViewGroups(nil, ms) }

// AppendViewGroups is MarshalViewGroups appending the message to dst, so
// that a publisher can reuse its buffers (bus.HandleBatch).
func AppendViewGroups(dst []byte, ms []ViewGroup) ([]byte, error) {
	if len(ms) == 1 {
		return appendViewGroup(dst, ms[0])
	}
	if err := checkBatch(ms, func(m ViewGroup) batchHead { return batchHead{m.RunID, m.Epoch, m.Split} }, checkViewGroup); err != nil {
		return nil, fmt.Errorf("messages: marshal ViewGroup batch: %w", err)
	}
	m0 := ms[0]
	for i, m := range ms {
		if m.NViews != m0.NViews || m.Height != m0.Height || m.Width != m0.Width || m.Channels != m0.Channels {
			return nil, fmt.Errorf("messages: marshal ViewGroup batch: %w: sample %d is %d views of %dx%dx%d, sample 0 %d of %dx%dx%d",
				ErrInvalid, i, m.NViews, m.Height, m.Width, m.Channels, m0.NViews, m0.Height, m0.Width, m0.Channels)
		}
	}
	total := len(ms) * len(m0.Pixels)
	if total > MaxPixelBytes {
		return nil, fmt.Errorf("messages: marshal ViewGroup batch: %w: %d pixel bytes, max %d", ErrTooLarge, total, MaxPixelBytes)
	}
	w := writeBatchHead(dst, typeViewGroupBatch, batchVersion, m0.RunID, m0.Epoch, m0.Split, len(ms), 1+4+4+1+4+total,
		func(i int) (uint64, int32) { return ms[i].SampleID, ms[i].Label })
	w.u8(m0.NViews)
	w.u32(m0.Height)
	w.u32(m0.Width)
	w.u8(m0.Channels)
	w.u32(uint32(total))
	for _, m := range ms {
		w.b = append(w.b, m.Pixels...)
	}
	return w.b, nil
}

// UnmarshalViewGroups decodes a ViewGroup or a ViewGroup batch. Pixels
// alias b, as in UnmarshalViewGroup.
func UnmarshalViewGroups(b []byte) ([]ViewGroup, error) {
	if !isType(b, typeViewGroupBatch) {
		m, err := UnmarshalViewGroup(b)
		if err != nil {
			return nil, err
		}
		return []ViewGroup{m}, nil
	}
	r, h, err := readBatchHead(b, typeViewGroupBatch)
	if err != nil {
		return nil, err
	}
	nViews := r.u8("n_views")
	height := r.u32("height")
	width := r.u32("width")
	channels := r.u8("channels")
	pixels := r.pixels()
	if err := r.finish(); err != nil {
		return nil, err
	}
	n := len(h.ids)
	if len(pixels)%n != 0 {
		return nil, fmt.Errorf("messages: unmarshal ViewGroup batch: %w: %d pixel bytes for %d samples", ErrInvalid, len(pixels), n)
	}
	each := len(pixels) / n
	ms := make([]ViewGroup, n)
	for i := range ms {
		ms[i] = ViewGroup{RunID: h.run, Epoch: h.epoch, SampleID: h.ids[i], Label: h.labels[i], Split: h.split,
			NViews: nViews, Height: height, Width: width, Channels: channels, Pixels: pixels[i*each : (i+1)*each : (i+1)*each]}
		if err := checkViewGroup(ms[i]); err != nil {
			return nil, fmt.Errorf("messages: unmarshal ViewGroup batch, sample %d: %w", i, err)
		}
	}
	return ms, nil
}

// batchHead is what the samples of a batch share.
type batchHead struct {
	run   string
	epoch uint32
	split string
}

// checkBatch checks the count, each sample, and that all share a head.
func checkBatch[M any](ms []M, head func(M) batchHead, check func(M) error) error {
	if len(ms) < 1 || len(ms) > MaxBatch {
		return fmt.Errorf("%w: %d samples, want 1 to %d", ErrTooLarge, len(ms), MaxBatch)
	}
	h0 := head(ms[0])
	for i, m := range ms {
		if err := check(m); err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
		if h := head(m); h != h0 {
			return fmt.Errorf("%w: sample %d is of run %q epoch %d split %q, sample 0 of run %q epoch %d split %q",
				ErrInvalid, i, h.run, h.epoch, h.split, h0.run, h0.epoch, h0.split)
		}
	}
	return nil
}

// writeBatchHead starts a batch of n samples after dst's bytes: epoch,
// count, run id, the sample ids, the labels, the split; body is the size
// of what follows.
func writeBatchHead(dst []byte, t msgType, version uint8, run string, epoch uint32, split string, n, body int, sample func(int) (uint64, int32)) *writer {
	w := newWriter(dst, t, version, 4+2+2+len(run)+n*(8+4)+2+len(split)+body)
	w.u32(epoch)
	w.u16(uint16(n))
	w.str(run)
	for i := range n {
		id, _ := sample(i)
		w.u64(id)
	}
	for i := range n {
		_, label := sample(i)
		w.u32(uint32(label))
	}
	w.str(split)
	return w
}

// readHead is a decoded batch head.
type readHead struct {
	run    string
	epoch  uint32
	split  string
	ids    []uint64
	labels []int32
}

// readBatchHead reads a batch's head; the count is bounded before the id
// and label slices are allocated.
func readBatchHead(b []byte, t msgType) (*reader, readHead, error) {
	var h readHead
	r, err := newReader(b, t)
	if err != nil {
		return nil, h, err
	}
	var ids []uint64
	h.epoch, h.run, ids, err = r.batchIdentity()
	if err != nil {
		return nil, h, err
	}
	h.ids = ids
	h.labels = make([]int32, len(ids))
	for i := range h.labels {
		h.labels[i] = int32(r.u32("label"))
	}
	h.split = r.str("split", MaxSplitLen)
	if r.err != nil {
		return nil, h, r.err
	}
	var errs []error
	for i, l := range h.labels {
		if err := checkLabel(l); err != nil {
			errs = append(errs, fmt.Errorf("sample %d: %w", i, err))
		}
	}
	if err := errors.Join(checkRunID(h.run), checkStr("split", h.split, MaxSplitLen), errors.Join(errs...)); err != nil {
		return nil, h, fmt.Errorf("messages: unmarshal %v: %w", t, err)
	}
	return r, h, nil
}

// batchIdentity reads the fields of a batch that name its samples: epoch,
// count (2..MaxBatch), run id and sample ids. They come first, so a cut
// payload of at least MaxSampleOf bytes still holds them.
func (r *reader) batchIdentity() (epoch uint32, run string, ids []uint64, err error) {
	epoch = r.u32("epoch")
	n := int(r.u16("count"))
	if r.err == nil && (n < 2 || n > MaxBatch) {
		r.err = fmt.Errorf("%w: %v of %d samples (want 2 to %d; one sample travels as a single message)", ErrInvalid, r.t, n, MaxBatch)
	}
	run = r.str("run_id", MaxRunIDLen)
	if r.err != nil {
		return 0, "", nil, r.err
	}
	p := r.take("sample_ids", 8*n)
	if r.err != nil {
		return 0, "", nil, r.err
	}
	ids = make([]uint64, n)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint64(p[8*i:])
	}
	return epoch, run, ids, nil
}

// isType reports whether b has our magic and type t, so that the
// Unmarshal*s functions pick the layout; anything else goes to the single
// type's decoder, whose error then says what is wrong.
func isType(b []byte, t msgType) bool {
	return len(b) >= headerLen && b[0] == magic0 && b[1] == magic1 && msgType(b[3]) == t
}

func (w *writer) u16(v uint16) { w.b = binary.LittleEndian.AppendUint16(w.b, v) }

func (r *reader) u16(field string) uint16 {
	if p := r.take(field, 2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

// Samples is how many samples message b carries, read from its head alone:
// the count of a batch, 1 for anything else (a single sample, or bytes
// that will not decode, whose decoder then says why). A bus consumer that
// counts what it holds in samples weighs each message with it.
func Samples(b []byte) int {
	for _, t := range []msgType{typeDecodeTaskBatch, typeImageBatch, typeViewGroupBatch} {
		if !isType(b, t) {
			continue
		}
		r, err := newReader(b, t)
		if err != nil {
			return 1
		}
		r.u32("epoch")
		if n := int(r.u16("count")); r.err == nil && n >= 2 && n <= MaxBatch {
			return n
		}
		return 1
	}
	return 1
}
