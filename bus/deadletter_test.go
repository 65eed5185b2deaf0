package bus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/supflow/supflow/messages"
)

func TestDeadLettersStream(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	runRouter(t, b, quick, Handle("stage", "in", "out", func(p []byte) (string, error) { return string(p), nil }, bytesOf,
		func(context.Context, string) (string, error) {
			return "", messages.Permanent(errors.New("corrupt image"))
		}))
	sendAll(t, b, "in", "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dls, err := b.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]messages.DeadLetter{}
	for dl := range dls {
		got[string(dl.Payload)] = dl
		if len(got) == 2 {
			break
		}
	}
	for _, p := range []string{"a", "b"} {
		dl, ok := got[p]
		if !ok || dl.SourceTopic != "in" || dl.Handler != "stage" || dl.Reason == "" {
			t.Errorf("dead letter %q = %+v", p, dl)
		}
	}
}

// TestDeliveryDeadLetter: a Sink gives a decoded message up for good; it
// lands on the dead-letter stream with the router's headers, is counted,
// and is not redelivered. If the dead-letter stream cannot take it, the
// message is nacked and comes back instead of being lost.
func TestDeliveryDeadLetter(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("views", "train"))
	reg := prometheus.NewRegistry()
	cfg := quick
	cfg.Registerer = reg
	got := make(chan *Delivery[string], 16)
	runRouter(t, b, cfg, Sink("train", "views", str, func(_ context.Context, d *Delivery[string]) error {
		got <- d
		return nil
	}))
	next := func() *Delivery[string] {
		t.Helper()
		select {
		case d := <-got:
			return d
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery")
			return nil
		}
	}

	sendAll(t, b, "views", "wrong shape")
	d := next()
	if err := d.DeadLetter(messages.Permanent(errors.New("3x3 views, want 2x2"))); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(); !errors.Is(err, ErrSettled) {
		t.Fatalf("ack after dead letter: %v", err)
	}
	if err := d.DeadLetter(errors.New("again")); !errors.Is(err, ErrSettled) {
		t.Fatalf("second dead letter: %v", err)
	}
	dl := deadLetters(t, b, 1)[0]
	h := dl.Header
	if string(dl.Data) != "wrong shape" || h.Get(messages.MetaSourceTopic) != "views" || h.Get(messages.MetaHandler) != "train" ||
		h.Get(messages.MetaDeliveries) != "1" || !strings.Contains(h.Get(messages.MetaReason), "rejected: permanent failure: 3x3 views, want 2x2") {
		t.Fatalf("dead letter %q, headers %v", dl.Data, h)
	}
	select {
	case d := <-got:
		t.Fatalf("dead-lettered message redelivered (delivery %d)", d.Deliveries())
	case <-time.After(300 * time.Millisecond):
	}
	drained(t, b, "views")
	if c := scrapeDeadLettered(t, reg); len(c) != 1 || c["train/"+reasonRejected] != 1 {
		t.Fatalf("dead_lettered counters %v, want train/rejected 1", c)
	}

	// Without a dead-letter stream the publish fails: nacked, redelivered.
	if err := b.js.DeleteStream(context.Background(), messages.TopicDeadLetter); err != nil {
		t.Fatal(err)
	}
	sendAll(t, b, "views", "no dead-letter stream")
	d = next()
	if err := d.DeadLetter(messages.Permanent(errors.New("bad"))); !errors.Is(err, ErrNoStream) {
		t.Fatalf("dead letter without its stream: %v, want ErrNoStream", err)
	}
	d = next()
	if d.Value != "no dead-letter stream" || d.Deliveries() != 2 {
		t.Fatalf("redelivered %q (delivery %d), want the nacked message again", d.Value, d.Deliveries())
	}
	if err := d.Ack(); err != nil {
		t.Fatal(err)
	}
	if c := scrapeDeadLettered(t, reg); c["train/"+reasonRejected] != 1 {
		t.Fatalf("dead_lettered counters %v: a failed dead letter was counted", c)
	}
}

// shape is the height and width, each at most messages.MaxSide, whose
// product is closest to pixels from below.
func shape(pixels int) (h, w uint32) {
	best := 0
	for cw := messages.MaxSide; cw >= 1 && pixels/cw <= messages.MaxSide; cw-- {
		if p := cw * min(pixels/cw, messages.MaxSide); p > best {
			best, h, w = p, uint32(p/cw), uint32(cw)
		}
	}
	return h, w
}

// nearMax returns a payload of n bytes on topic whose first bytes are a
// valid message of sample id (so that the dead letter can name it) and
// whose rest is filler: malformed unless valid is set, in which case the
// filler is the pixels of a valid Image or ViewGroup.
func nearMax(t *testing.T, topic string, id uint64, n int, valid bool) []byte {
	t.Helper()
	var head []byte
	var err error
	switch topic {
	case messages.TopicDecodeTasks:
		head, err = messages.MarshalDecodeTask(messages.DecodeTask{RunID: "run", Epoch: 3, SampleID: id, Key: "k/x.png"})
	case messages.TopicImages:
		head, err = messages.MarshalImage(messages.Image{RunID: "run", Epoch: 3, SampleID: id, Height: 1, Width: 1, Channels: 1, Pixels: []byte{0}})
		if valid {
			h, w := shape(n - len(head) + 1)
			head, err = messages.MarshalImage(messages.Image{RunID: "run", Epoch: 3, SampleID: id, Height: h, Width: w, Channels: 1, Pixels: make([]byte, h*w)})
		}
	case messages.TopicViews:
		head, err = messages.MarshalViewGroup(messages.ViewGroup{RunID: "run", Epoch: 3, SampleID: id, NViews: 1, Height: 1, Width: 1, Channels: 1, Pixels: []byte{0}})
		if valid {
			h, w := shape(n - len(head) + 1)
			head, err = messages.MarshalViewGroup(messages.ViewGroup{RunID: "run", Epoch: 3, SampleID: id, NViews: 1, Height: h, Width: w, Channels: 1, Pixels: make([]byte, h*w)})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if valid {
		return head // up to a few bytes short of n
	}
	return append(head, make([]byte, n-len(head))...) // trailing bytes: malformed
}

// TestDeadLetterAlwaysFits is the regression test of a malformed message
// just under max_payload (1,048,380 bytes on the decode subject with
// max_payload 1 MiB) that could never be dead-lettered: the dead-letter
// headers pushed it over max_payload, the publish failed, and it was nacked
// and redelivered without end. For every stage input, malformed and
// (where a valid message can be that large) valid-but-refused messages of
// sizes at and just under the largest publishable one are each
// dead-lettered once, at the first delivery, with a payload cut to fit,
// the original size in supflow_payload_size, and their sample still
// identified by messages.DeadLetter.Sample.
func TestDeadLetterAlwaysFits(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{MaxPayload: 1 << 20}).URL())
	provision(t, b, edge(messages.TopicDecodeTasks, "decode"), edge(messages.TopicImages, "augment"), edge(messages.TopicViews, "train"))
	reg := prometheus.NewRegistry()
	cfg := quick
	cfg.Registerer = reg
	refuse := errors.New("refused")
	runRouter(t, b, cfg,
		Handle("decode", messages.TopicDecodeTasks, messages.TopicImages, messages.UnmarshalDecodeTask, messages.MarshalImage,
			func(context.Context, messages.DecodeTask) (messages.Image, error) {
				return messages.Image{}, messages.Permanent(refuse)
			}),
		Handle("augment", messages.TopicImages, messages.TopicViews, messages.UnmarshalImage, messages.MarshalViewGroup,
			func(context.Context, messages.Image) (messages.ViewGroup, error) {
				return messages.ViewGroup{}, messages.Permanent(refuse)
			}),
		Sink("train", messages.TopicViews, messages.UnmarshalViewGroup,
			func(_ context.Context, d *Delivery[messages.ViewGroup]) error {
				return d.DeadLetter(messages.Permanent(refuse))
			}))

	// The largest payload Send can publish: max_payload less its one
	// header, a 36-byte Nats-Msg-Id.
	largest := int(b.MaxPayload()) - headerSize(nats.Header{nats.MsgIdHdr: {watermill.NewUUID()}})
	type sent struct {
		topic   string
		id      uint64
		payload []byte
		valid   bool
	}
	var want []sent
	id := uint64(0)
	for _, topic := range []string{messages.TopicDecodeTasks, messages.TopicImages, messages.TopicViews} {
		for _, size := range []int{1_048_380, largest, largest - 1, largest - 200, largest - 1100} {
			for _, valid := range []bool{false, true} {
				if valid && topic == messages.TopicDecodeTasks {
					continue // a valid task is at most about 1.2 KB
				}
				id++
				p := nearMax(t, topic, id, size, valid)
				want = append(want, sent{topic, id, p, valid})
				if err := b.Publisher().Send(context.Background(), topic, p); err != nil {
					t.Fatalf("publish %d bytes on %s: %v", size, topic, err)
				}
			}
		}
	}

	truncated := 0
	for _, m := range deadLetters(t, b, len(want)) {
		h := m.Header
		dl := messages.DeadLetter{Payload: m.Data, SourceTopic: h.Get(messages.MetaSourceTopic), Reason: h.Get(messages.MetaReason)}
		if n, err := strconv.Atoi(h.Get(messages.MetaPayloadSize)); err == nil {
			dl.Size = n
		}
		size := max(dl.Size, len(dl.Payload))
		i := slices.IndexFunc(want, func(s sent) bool {
			return s.topic == dl.SourceTopic && len(s.payload) == size && bytes.HasPrefix(s.payload, dl.Payload)
		})
		if i < 0 {
			t.Errorf("unexpected or repeated dead letter from %s: %d of %d bytes", dl.SourceTopic, len(dl.Payload), size)
			continue
		}
		s := want[i]
		want = slices.Delete(want, i, i+1)
		if wire := len(m.Data) + headerSize(h); int64(wire) > b.MaxPayload() {
			t.Errorf("sample %d: dead letter is %d bytes, over max_payload", s.id, wire)
		}
		if n := h.Get(messages.MetaDeliveries); n != "1" {
			t.Errorf("sample %d: dead-lettered at delivery %s", s.id, n)
		}
		run, epoch, ids, ok := dl.Samples()
		if dl.Truncated() {
			truncated++
			if !ok || run != "run" || epoch != 3 || !slices.Equal(ids, []uint64{s.id}) {
				t.Errorf("sample %d: dead letter keeps %d of %d bytes: Samples() = %q, %d, %v, %v", s.id, len(dl.Payload), dl.Size, run, epoch, ids, ok)
			}
		} else if len(dl.Payload) != len(s.payload) || ok != s.valid || ok && !slices.Equal(ids, []uint64{s.id}) {
			t.Errorf("sample %d (valid %v): untruncated dead letter of %d bytes, Samples() = %v, %v", s.id, s.valid, len(dl.Payload), ids, ok)
		}
	}
	for _, s := range want {
		t.Errorf("sample %d (%d bytes on %s) never dead-lettered", s.id, len(s.payload), s.topic)
	}
	if truncated < 15 {
		t.Errorf("%d dead letters truncated; the sizes should need it for 15 or more", truncated)
	}
	time.Sleep(300 * time.Millisecond) // a nacked message would be back by now
	for _, topic := range []string{messages.TopicDecodeTasks, messages.TopicImages, messages.TopicViews} {
		drained(t, b, topic)
	}
	if n := streamMsgs(t, b, messages.TopicDeadLetter); n != uint64(id) {
		t.Errorf("%d dead letters stored, want %d", n, id)
	}
}

// TestUndeliverableIsTerminated: a message that must be dead-lettered but
// cannot be (here the dead-letter stream is gone) is nacked and retried
// until the consumer's MaxDeliver, then terminated with an ERROR log and a
// count, on a Handle route (permanent failure, or transient ones up to
// MaxDeliver) and on a Sink (Delivery.DeadLetter) alike: it never loops.
func TestUndeliverableIsTerminated(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("perm", "perm"), edge("flaky", "flaky"), edge("sink", "sink"), edge("out", "check"))
	if err := b.js.DeleteStream(context.Background(), messages.TopicDeadLetter); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var logs syncBuffer
	cfg := quick
	cfg.Registerer = reg
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	var mu sync.Mutex
	calls := map[string]int{}
	count := func(route string) {
		mu.Lock()
		calls[route]++
		mu.Unlock()
	}
	runRouter(t, b, cfg,
		Handle("perm", "perm", "out", str, bytesOf, func(context.Context, string) (string, error) {
			count("perm")
			return "", messages.Permanent(errors.New("corrupt"))
		}),
		Handle("flaky", "flaky", "out", str, bytesOf, func(context.Context, string) (string, error) {
			count("flaky")
			return "", errors.New("store unavailable")
		}),
		Sink("sink", "sink", str, func(_ context.Context, d *Delivery[string]) error {
			count("sink")
			if err := d.DeadLetter(errors.New("wrong shape")); err == nil {
				t.Error("dead letter without its stream succeeded")
			}
			return nil
		}))
	for _, topic := range []string{"perm", "flaky", "sink"} {
		sendAll(t, b, topic, "poison")
	}
	// Wait for the fourth call of each route for as long as calls keep
	// coming (each after a nak delay), at most stallLimit without one.
	last, lastAt := 0, time.Now()
	for {
		mu.Lock()
		done := calls["perm"] >= 4 && calls["flaky"] >= 4 && calls["sink"] >= 4
		n := calls["perm"] + calls["flaky"] + calls["sink"]
		mu.Unlock()
		if n != last {
			last, lastAt = n, time.Now()
		}
		if done || time.Since(lastAt) > stallLimit {
			break
		}
		time.Sleep(20 * time.Millisecond) // poll the counts
	}
	time.Sleep(time.Second) // 20 nak delays: a loop would show
	mu.Lock()
	defer mu.Unlock()
	for _, route := range []string{"perm", "flaky", "sink"} {
		if calls[route] != 4 {
			t.Errorf("%s: handled %d times, want 4 (max deliver) and then terminated", route, calls[route])
		}
		drained(t, b, route)
	}
	got := scrapeCounter(t, reg, "supflow_bus_messages_terminated_total")
	if got["perm"] != 1 || got["flaky"] != 1 || got["sink"] != 1 || len(got) != 3 {
		t.Errorf("terminated counters %v, want 1 per route", got)
	}
	if n := strings.Count(logs.String(), "level=ERROR msg=\"message terminated"); n != 3 {
		t.Errorf("%d ERROR lines for terminated messages, want 3:\n%s", n, logs.String())
	}
}
