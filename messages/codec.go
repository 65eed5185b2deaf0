package messages

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
)

// Version is the newest wire format version this package reads and writes;
// it reads every version from 1 up to it and rejects any other with
// ErrVersion. A message is written in the lowest version whose layout holds
// it, so readers that predate a version still read every message that does
// not need it: DecodeTask, Image, ViewGroup and an Event without scores are
// version 1; an Event with scores is version 2; the batch types (of 2 or
// more samples) are version 3; a DecodeTask, or a DecodeTask batch, with a
// shard member (DecodeTask.Length) is version 4 (docs/messages.md).
const Version = 4

// eventScoresVersion is the first version whose Event layout carries
// scores.
const eventScoresVersion = 2

// Bounds checked on both Marshal and Unmarshal, so a corrupt or hostile length
// field can never make a decoder allocate or index past them.
const (
	MaxRunIDLen    = 128
	MaxSplitLen    = 64
	MaxKeyLen      = 1024 // S3's own key limit
	MaxRefLen      = 1024
	MaxInfoLen     = 4096
	MaxSide        = 16384    // pixels per image side
	MaxPixelBytes  = 64 << 20 // NATS' hard max_payload
	MaxViews       = 16
	headerLen      = 4 // magic "SF", version, type
	magic0, magic1 = 'S', 'F'
)

// Bounds of an Event's scores (version 2), checked the same way.
const (
	MaxScores       = 16 // scores per Event
	MaxScoreNameLen = 64 // bytes of a score's name
)

// Sentinel errors; every decode or encode error wraps exactly one of them.
var (
	ErrMagic     = errors.New("messages: not a supflow message")
	ErrVersion   = errors.New("messages: unsupported format version")
	ErrType      = errors.New("messages: wrong message type")
	ErrTruncated = errors.New("messages: truncated payload")
	ErrTrailing  = errors.New("messages: trailing bytes")
	ErrTooLarge  = errors.New("messages: size out of bounds")
	ErrInvalid   = errors.New("messages: invalid field")
)

// msgType is the third header byte; values are part of the wire format.
type msgType uint8

const (
	typeDecodeTask msgType = 1
	typeImage      msgType = 2
	typeViewGroup  msgType = 3
	typeEvent      msgType = 4
	// The batch types, from version 3 (batch.go).
	typeDecodeTaskBatch msgType = 5
	typeImageBatch      msgType = 6
	typeViewGroupBatch  msgType = 7
)

func (t msgType) String() string {
	switch t {
	case typeDecodeTask:
		return "DecodeTask"
	case typeImage:
		return "Image"
	case typeViewGroup:
		return "ViewGroup"
	case typeEvent:
		return "Event"
	case typeDecodeTaskBatch:
		return "DecodeTask batch"
	case typeImageBatch:
		return "Image batch"
	case typeViewGroupBatch:
		return "ViewGroup batch"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// MarshalDecodeTask encodes m in the current wire format.
func MarshalDecodeTask(m DecodeTask) ([]byte, error) {
	if err := checkDecodeTask(m); err != nil {
		return nil, fmt.Errorf("messages: marshal DecodeTask: %w", err)
	}
	version, body := uint8(1), 4+8+4+2*3+len(m.RunID)+len(m.Split)+len(m.Key)
	if m.Length > 0 {
		version, body = shardVersion, body+8+4
	}
	w := newWriter(nil, typeDecodeTask, version, body)
	w.u32(m.Epoch)
	w.u64(m.SampleID)
	w.u32(uint32(m.Label))
	w.str(m.RunID)
	w.str(m.Split)
	w.str(m.Key)
	if m.Length > 0 {
		w.u64(m.Offset)
		w.u32(m.Length)
	}
	return w.b, nil
}

// UnmarshalDecodeTask decodes and validates b.
func UnmarshalDecodeTask(b []byte) (DecodeTask, error) {
	var m DecodeTask
	r, err := newReader(b, typeDecodeTask)
	if err != nil {
		return m, err
	}
	m.Epoch = r.u32("epoch")
	m.SampleID = r.u64("sample_id")
	m.Label = int32(r.u32("label"))
	m.RunID = r.str("run_id", MaxRunIDLen)
	m.Split = r.str("split", MaxSplitLen)
	m.Key = r.str("key", MaxKeyLen)
	switch r.version {
	case 1:
	case shardVersion:
		m.Offset = r.u64("offset")
		if m.Length = r.u32("length"); m.Length == 0 && r.err == nil {
			// A whole object is written as version 1: one encoding each.
			r.err = fmt.Errorf("%w: version %d DecodeTask with length 0", ErrInvalid, shardVersion)
		}
	default:
		return DecodeTask{}, fmt.Errorf("%w: %d for DecodeTask (written as version 1 or %d)", ErrVersion, r.version, shardVersion)
	}
	if err := r.finish(); err != nil {
		return DecodeTask{}, err
	}
	if err := checkDecodeTask(m); err != nil {
		return DecodeTask{}, fmt.Errorf("messages: unmarshal DecodeTask: %w", err)
	}
	return m, nil
}

// MarshalImage encodes m in the current wire format. The pixels are copied
// once into the returned buffer.
func MarshalImage(m Image) ([]byte, error) { return appendImage(nil, m) }

func appendImage(dst []byte, m Image) ([]byte, error) {
	if err := checkImage(m); err != nil {
		return nil, fmt.Errorf("messages: marshal Image: %w", err)
	}
	w := newWriter(dst, typeImage, 1, 4+8+4+4+4+1+2*2+len(m.RunID)+len(m.Split)+4+len(m.Pixels))
	w.u32(m.Epoch)
	w.u64(m.SampleID)
	w.u32(uint32(m.Label))
	w.u32(m.Height)
	w.u32(m.Width)
	w.u8(m.Channels)
	w.str(m.RunID)
	w.str(m.Split)
	w.bytes(m.Pixels)
	return w.b, nil
}

// UnmarshalImage decodes and validates b. The returned Pixels alias b (no
// copy): the caller must not modify b while it uses the Image.
func UnmarshalImage(b []byte) (Image, error) {
	var m Image
	r, err := newReader(b, typeImage)
	if err != nil {
		return m, err
	}
	m.Epoch = r.u32("epoch")
	m.SampleID = r.u64("sample_id")
	m.Label = int32(r.u32("label"))
	m.Height = r.u32("height")
	m.Width = r.u32("width")
	m.Channels = r.u8("channels")
	m.RunID = r.str("run_id", MaxRunIDLen)
	m.Split = r.str("split", MaxSplitLen)
	m.Pixels = r.pixels()
	if err := r.finish(); err != nil {
		return Image{}, err
	}
	if err := checkImage(m); err != nil {
		return Image{}, fmt.Errorf("messages: unmarshal Image: %w", err)
	}
	return m, nil
}

// MarshalViewGroup encodes m in the current wire format. The pixels are
// copied once into the returned buffer.
func MarshalViewGroup(m ViewGroup) ([]byte, error) { return appendViewGroup(nil, m) }

func appendViewGroup(dst []byte, m ViewGroup) ([]byte, error) {
	if err := checkViewGroup(m); err != nil {
		return nil, fmt.Errorf("messages: marshal ViewGroup: %w", err)
	}
	w := newWriter(dst, typeViewGroup, 1, 4+8+4+1+4+4+1+2*2+len(m.RunID)+len(m.Split)+4+len(m.Pixels))
	w.u32(m.Epoch)
	w.u64(m.SampleID)
	w.u32(uint32(m.Label))
	w.u8(m.NViews)
	w.u32(m.Height)
	w.u32(m.Width)
	w.u8(m.Channels)
	w.str(m.RunID)
	w.str(m.Split)
	w.bytes(m.Pixels)
	return w.b, nil
}

// UnmarshalViewGroup decodes and validates b. The returned Pixels alias b
// (no copy): the caller must not modify b while it uses the ViewGroup.
func UnmarshalViewGroup(b []byte) (ViewGroup, error) {
	var m ViewGroup
	r, err := newReader(b, typeViewGroup)
	if err != nil {
		return m, err
	}
	m.Epoch = r.u32("epoch")
	m.SampleID = r.u64("sample_id")
	m.Label = int32(r.u32("label"))
	m.NViews = r.u8("n_views")
	m.Height = r.u32("height")
	m.Width = r.u32("width")
	m.Channels = r.u8("channels")
	m.RunID = r.str("run_id", MaxRunIDLen)
	m.Split = r.str("split", MaxSplitLen)
	m.Pixels = r.pixels()
	if err := r.finish(); err != nil {
		return ViewGroup{}, err
	}
	if err := checkViewGroup(m); err != nil {
		return ViewGroup{}, fmt.Errorf("messages: unmarshal ViewGroup: %w", err)
	}
	return m, nil
}

// MarshalEvent encodes m: in version 1 without scores, in version 2 with.
func MarshalEvent(m Event) ([]byte, error) {
	if err := checkEvent(m); err != nil {
		return nil, fmt.Errorf("messages: marshal Event: %w", err)
	}
	version, body := uint8(1), 1+4+8+2*3+len(m.RunID)+len(m.Ref)+len(m.Info)
	if len(m.Scores) > 0 {
		version, body = eventScoresVersion, body+1+len(m.Scores)*(2+8)
		for _, sc := range m.Scores {
			body += len(sc.Name)
		}
	}
	w := newWriter(nil, typeEvent, version, body)
	w.u8(uint8(m.Kind))
	w.u32(m.Epoch)
	w.u64(m.Count)
	w.str(m.RunID)
	w.str(m.Ref)
	w.str(m.Info)
	if len(m.Scores) > 0 {
		w.u8(uint8(len(m.Scores)))
		for _, sc := range m.Scores {
			w.str(sc.Name)
			w.u64(math.Float64bits(sc.Value))
		}
	}
	return w.b, nil
}

// UnmarshalEvent decodes and validates b.
func UnmarshalEvent(b []byte) (Event, error) {
	var m Event
	r, err := newReader(b, typeEvent)
	if err != nil {
		return m, err
	}
	m.Kind = EventKind(r.u8("kind"))
	m.Epoch = r.u32("epoch")
	m.Count = r.u64("count")
	m.RunID = r.str("run_id", MaxRunIDLen)
	m.Ref = r.str("ref", MaxRefLen)
	m.Info = r.str("info", MaxInfoLen)
	if r.version >= eventScoresVersion {
		m.Scores = r.scores()
	}
	if err := r.finish(); err != nil {
		return Event{}, err
	}
	if err := checkEvent(m); err != nil {
		return Event{}, fmt.Errorf("messages: unmarshal Event: %w", err)
	}
	return m, nil
}

// samplesOf reads the fields that name the samples of a DecodeTask, Image
// or ViewGroup (t), or of a batch of them (batch), from the start of b,
// ignoring whatever follows the run id (the sample ids, in a batch): the
// identity of a payload that was cut short. It reads at most MaxSampleOf
// bytes.
func samplesOf(b []byte, t, batch msgType) (run string, epoch uint32, ids []uint64, err error) {
	if isType(b, batch) {
		r, err := newReader(b, batch)
		if err != nil {
			return "", 0, nil, err
		}
		epoch, run, ids, err := r.batchIdentity()
		if err != nil {
			return "", 0, nil, err
		}
		if err := checkRunID(run); err != nil {
			return "", 0, nil, err
		}
		return run, epoch, ids, nil
	}
	run, epoch, id, err := sampleOf(b, t)
	if err != nil {
		return "", 0, nil, err
	}
	return run, epoch, []uint64{id}, nil
}

func sampleOf(b []byte, t msgType) (run string, epoch uint32, id uint64, err error) {
	r, err := newReader(b, t)
	if err != nil {
		return "", 0, 0, err
	}
	epoch = r.u32("epoch")
	id = r.u64("sample_id")
	label := int32(r.u32("label"))
	switch t {
	case typeImage:
		r.take("height, width, channels", 4+4+1)
	case typeViewGroup:
		r.take("n_views, height, width, channels", 1+4+4+1)
	}
	run = r.str("run_id", MaxRunIDLen)
	if r.err != nil {
		return "", 0, 0, r.err
	}
	if err := errors.Join(checkRunID(run), checkLabel(label)); err != nil {
		return "", 0, 0, err
	}
	return run, epoch, id, nil
}

// MaxSampleOf is the most bytes of a DecodeTask, Image or ViewGroup, or a
// batch of them, that hold the fields naming its samples (single: header,
// epoch, sample id, label, the fixed-size fields and the run id; batch:
// header, epoch, count, run id, sample ids): a payload cut to at least this
// many bytes still names them (DeadLetter.Samples). The batch of MaxBatch
// samples is the longest.
const MaxSampleOf = headerLen + 4 + 2 + 2 + MaxRunIDLen + 8*MaxBatch

func checkDecodeTask(m DecodeTask) error {
	return errors.Join(
		checkRunID(m.RunID),
		checkLabel(m.Label),
		checkStr("split", m.Split, MaxSplitLen),
		checkRequired("key", m.Key, MaxKeyLen),
		checkMember(m.Offset, m.Length),
	)
}

// checkMember refuses an offset without a length: a whole object starts at 0.
func checkMember(offset uint64, length uint32) error {
	if length == 0 && offset != 0 {
		return fmt.Errorf("%w: offset %d with length 0", ErrInvalid, offset)
	}
	return nil
}

func checkImage(m Image) error {
	return errors.Join(
		checkRunID(m.RunID),
		checkLabel(m.Label),
		checkStr("split", m.Split, MaxSplitLen),
		checkPixels(1, m.Height, m.Width, m.Channels, len(m.Pixels)),
	)
}

func checkViewGroup(m ViewGroup) error {
	if m.NViews == 0 || m.NViews > MaxViews {
		return fmt.Errorf("%w: n_views %d not in [1, %d]", ErrInvalid, m.NViews, MaxViews)
	}
	return errors.Join(
		checkRunID(m.RunID),
		checkLabel(m.Label),
		checkStr("split", m.Split, MaxSplitLen),
		checkPixels(int(m.NViews), m.Height, m.Width, m.Channels, len(m.Pixels)),
	)
}

func checkEvent(m Event) error {
	var kind error
	if m.Kind < EventEpochStart || m.Kind > EventTrainerStarted {
		kind = fmt.Errorf("%w: unknown event kind %d", ErrInvalid, m.Kind)
	}
	return errors.Join(
		kind,
		checkRunID(m.RunID),
		checkStr("ref", m.Ref, MaxRefLen),
		checkStr("info", m.Info, MaxInfoLen),
		checkScores(m.Scores),
	)
}

func checkScores(scores []Score) error {
	if len(scores) > MaxScores {
		return fmt.Errorf("%w: %d scores, max %d", ErrTooLarge, len(scores), MaxScores)
	}
	var errs []error
	for i, sc := range scores {
		if err := checkRequired(fmt.Sprintf("score %d name", i), sc.Name, MaxScoreNameLen); err != nil {
			errs = append(errs, err)
			continue
		}
		if math.IsNaN(sc.Value) || math.IsInf(sc.Value, 0) {
			errs = append(errs, fmt.Errorf("%w: score %q is %v (want a finite value)", ErrInvalid, sc.Name, sc.Value))
		}
		for _, prev := range scores[:i] {
			if prev.Name == sc.Name {
				errs = append(errs, fmt.Errorf("%w: score %q appears twice", ErrInvalid, sc.Name))
				break
			}
		}
	}
	return errors.Join(errs...)
}

func checkRunID(s string) error { return checkRequired("run_id", s, MaxRunIDLen) }

func checkRequired(field, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, field)
	}
	return checkStr(field, s, max)
}

func checkStr(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, max %d", ErrTooLarge, field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	return nil
}

func checkLabel(l int32) error {
	if l < -1 {
		return fmt.Errorf("%w: label %d (want >= 0, or -1 for unlabelled)", ErrInvalid, l)
	}
	return nil
}

// checkPixels validates the geometry before multiplying, so the product
// cannot overflow.
func checkPixels(views int, h, w uint32, c uint8, n int) error {
	if c != 1 && c != 3 {
		return fmt.Errorf("%w: channels %d (want 1 or 3)", ErrInvalid, c)
	}
	if h == 0 || w == 0 || h > MaxSide || w > MaxSide {
		return fmt.Errorf("%w: size %dx%d not in [1, %d]", ErrTooLarge, h, w, MaxSide)
	}
	want := uint64(views) * uint64(h) * uint64(w) * uint64(c)
	if want > MaxPixelBytes {
		return fmt.Errorf("%w: %d pixel bytes, max %d", ErrTooLarge, want, MaxPixelBytes)
	}
	if uint64(n) != want {
		return fmt.Errorf("%w: %d pixel bytes, want %d (views %d x %dx%dx%d)", ErrInvalid, n, want, views, h, w, c)
	}
	return nil
}

type writer struct{ b []byte }

// newWriter starts a message of type t after dst's bytes, with room for
// body more bytes after the header.
func newWriter(dst []byte, t msgType, version uint8, body int) *writer {
	w := &writer{b: slices.Grow(dst, headerLen+body)}
	w.b = append(w.b, magic0, magic1, version, byte(t))
	return w
}

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }

// str writes a u16 length then the bytes; callers checked the length bound.
func (w *writer) str(s string) {
	w.b = binary.LittleEndian.AppendUint16(w.b, uint16(len(s)))
	w.b = append(w.b, s...)
}

// bytes writes a u32 length then the bytes; callers checked the bound.
func (w *writer) bytes(p []byte) {
	w.u32(uint32(len(p)))
	w.b = append(w.b, p...)
}

// reader decodes fields in order; the first failure sticks and later reads
// return zero values, so decoders check the error once at the end.
type reader struct {
	b       []byte
	off     int
	t       msgType
	version uint8
	err     error
}

// versions are the first and the newest version with a layout of t: a
// type's layout exists from the version that introduced it up to the last
// one that changed it.
func versions(t msgType) (first, last uint8) {
	switch t {
	case typeEvent:
		return 1, eventScoresVersion
	case typeDecodeTask:
		return 1, shardVersion // 1 or shardVersion, UnmarshalDecodeTask checks
	case typeDecodeTaskBatch:
		return batchVersion, shardVersion
	case typeImageBatch, typeViewGroupBatch:
		return batchVersion, batchVersion
	}
	return 1, 1
}

func newReader(b []byte, want msgType) (*reader, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(b), headerLen)
	}
	if b[0] != magic0 || b[1] != magic1 {
		return nil, fmt.Errorf("%w: magic %q", ErrMagic, b[:2])
	}
	if b[2] < 1 || b[2] > Version {
		return nil, fmt.Errorf("%w: %d (this build reads 1 to %d)", ErrVersion, b[2], Version)
	}
	if got := msgType(b[3]); got != want {
		return nil, fmt.Errorf("%w: got %v, want %v", ErrType, got, want)
	}
	// A type a version did not change is written in its older version only,
	// so each message has one encoding.
	if first, last := versions(want); b[2] < first || b[2] > last {
		return nil, fmt.Errorf("%w: %d for %v (written as version %d to %d)", ErrVersion, b[2], want, first, last)
	}
	return &reader{b: b, off: headerLen, t: want, version: b[2]}, nil
}

func (r *reader) take(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: %v.%s needs %d bytes at offset %d, %d left",
			ErrTruncated, r.t, field, n, r.off, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8(field string) uint8 {
	if p := r.take(field, 1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u32(field string) uint32 {
	if p := r.take(field, 4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64(field string) uint64 {
	if p := r.take(field, 8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *reader) str(field string, max int) string {
	p := r.take(field+" length", 2)
	if p == nil {
		return ""
	}
	n := int(binary.LittleEndian.Uint16(p))
	if n > max {
		r.err = fmt.Errorf("%w: %v.%s is %d bytes, max %d", ErrTooLarge, r.t, field, n, max)
		return ""
	}
	return string(r.take(field, n))
}

// pixels reads a u32 length then aliases that many bytes of the input.
func (r *reader) pixels() []byte {
	n := r.u32("pixels length")
	if r.err != nil {
		return nil
	}
	if n > MaxPixelBytes {
		r.err = fmt.Errorf("%w: %v.pixels is %d bytes, max %d", ErrTooLarge, r.t, n, MaxPixelBytes)
		return nil
	}
	return r.take("pixels", int(n))
}

// scores reads a version 2 Event's scores: a u8 count (1..MaxScores), then
// per score a name str and the value's IEEE 754 bits as a u64.
func (r *reader) scores() []Score {
	n := r.u8("scores count")
	if r.err != nil {
		return nil
	}
	if n == 0 {
		r.err = fmt.Errorf("%w: version %d %v with no scores (an event without scores is version 1)", ErrInvalid, r.version, r.t)
		return nil
	}
	if n > MaxScores {
		r.err = fmt.Errorf("%w: %v has %d scores, max %d", ErrTooLarge, r.t, n, MaxScores)
		return nil
	}
	out := make([]Score, n)
	for i := range out {
		out[i].Name = r.str("score name", MaxScoreNameLen)
		out[i].Value = math.Float64frombits(r.u64("score value"))
	}
	if r.err != nil {
		return nil
	}
	return out
}

func (r *reader) finish() error {
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.b) {
		return fmt.Errorf("%w: %d after %v", ErrTrailing, len(r.b)-r.off, r.t)
	}
	return nil
}
