package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supflow/supflow/internal/bufpool"
	"github.com/supflow/supflow/messages"
)

// batchCollector is a Sink of a batched topic that acks every message and
// records the sample ids of each.
type batchCollector struct {
	mu   sync.Mutex
	msgs [][]uint64
	seen chan struct{}
}

func (c *batchCollector) route(name, topic string) Route {
	c.seen = make(chan struct{}, 1024)
	return Sink(name, topic, messages.UnmarshalImages, func(_ context.Context, d *Delivery[[]messages.Image]) error {
		ids := make([]uint64, len(d.Value))
		for i, m := range d.Value {
			ids[i] = m.SampleID
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, ids)
		c.mu.Unlock()
		c.seen <- struct{}{}
		return d.Ack()
	})
}

// ids waits until the messages received hold n samples; it returns them
// sorted and the number of messages.
func (c *batchCollector) ids(t *testing.T, n int) ([]uint64, int) {
	t.Helper()
	stalled := time.NewTimer(stallLimit)
	defer stalled.Stop()
	for {
		c.mu.Lock()
		var all []uint64
		for _, m := range c.msgs {
			all = append(all, m...)
		}
		msgs := len(c.msgs)
		c.mu.Unlock()
		if len(all) >= n {
			slices.Sort(all)
			return all, msgs
		}
		select {
		case <-c.seen:
			stalled.Reset(stallLimit)
		case <-stalled.C:
			t.Fatalf("got samples %v, want %d; none for %v", all, n, stallLimit)
		}
	}
}

// TestHandleBatchDeadLettersOneSample: in a batch of five decode tasks, a
// corrupt and a missing image are dead-lettered each alone, with its key
// and reason, and name their sample; the other three go on, packed into as
// few messages as fit max_payload (two here: 3 x 30 KB > 64 KiB).
func TestHandleBatchDeadLettersOneSample(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{MaxPayload: 64 << 10})
	b := connect(t, srv.URL())
	provision(t, b, edge(messages.TopicDecodeTasks, "decode"), edge(messages.TopicImages, "check"))

	tasks := make([]messages.DecodeTask, 5)
	for i := range tasks {
		tasks[i] = messages.DecodeTask{RunID: "run", Epoch: 2, SampleID: uint64(i), Label: 1, Split: "train", Key: fmt.Sprintf("img/%d.png", i)}
	}
	tasks[1].Key, tasks[3].Key = "img/corrupt.png", "img/missing.png"
	decode := func(_ context.Context, task messages.DecodeTask) (messages.Image, error) {
		switch {
		case strings.Contains(task.Key, "corrupt"):
			return messages.Image{}, messages.Permanent(fmt.Errorf("decode: object %q: not an image", task.Key))
		case strings.Contains(task.Key, "missing"):
			return messages.Image{}, messages.Permanent(fmt.Errorf("decode: object %q: not found", task.Key))
		}
		return messages.Image{RunID: task.RunID, Epoch: task.Epoch, SampleID: task.SampleID, Label: task.Label, Split: task.Split,
			Height: 100, Width: 100, Channels: 3, Pixels: make([]byte, 100*100*3)}, nil
	}
	col := &batchCollector{}
	runRouter(t, b, quick,
		HandleBatch("decode", messages.TopicDecodeTasks, messages.TopicImages,
			messages.UnmarshalDecodeTasks, messages.AppendImages, messages.MarshalDecodeTask, decode),
		col.route("check", messages.TopicImages))
	p, err := messages.MarshalDecodeTasks(tasks)
	if err != nil {
		t.Fatal(err)
	}
	sendAll(t, b, messages.TopicDecodeTasks, string(p))

	ids, msgs := col.ids(t, 3)
	if !slices.Equal(ids, []uint64{0, 2, 4}) || msgs != 2 {
		t.Errorf("images of samples %v in %d messages, want 0, 2, 4 in 2", ids, msgs)
	}
	dls := deadLetters(t, b, 2)
	for _, m := range dls {
		dl := messages.DeadLetter{Payload: m.Data, SourceTopic: m.Header.Get(messages.MetaSourceTopic), Reason: m.Header.Get(messages.MetaReason)}
		run, epoch, got, ok := dl.Samples()
		if !ok || run != "run" || epoch != 2 || len(got) != 1 {
			t.Fatalf("dead letter names %q %d %v (ok %v)", run, epoch, got, ok)
		}
		task, err := messages.UnmarshalDecodeTask(m.Data)
		if err != nil || !strings.Contains(dl.Reason, task.Key) {
			t.Errorf("dead letter of sample %d: %v, reason %q", got[0], err, dl.Reason)
		}
		if want := map[uint64]string{1: "not an image", 3: "not found"}[got[0]]; want == "" || !strings.Contains(dl.Reason, want) {
			t.Errorf("sample %d dead-lettered for %q", got[0], dl.Reason)
		}
	}
	drained(t, b, messages.TopicDecodeTasks)
}

// TestHandleBatchGivesUpPerSample: a sample failing transiently redelivers
// its whole batch; at the last delivery it alone is dead-lettered
// (max_deliver) and the others go on.
func TestHandleBatchGivesUpPerSample(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	provision(t, b, edge(messages.TopicDecodeTasks, "decode"), edge(messages.TopicImages, "check"))
	var mu sync.Mutex
	calls := map[uint64]int{}
	decode := func(_ context.Context, task messages.DecodeTask) (messages.Image, error) {
		mu.Lock()
		calls[task.SampleID]++
		mu.Unlock()
		if task.SampleID == 1 {
			return messages.Image{}, errors.New("store unavailable")
		}
		return messages.Image{RunID: task.RunID, Epoch: task.Epoch, SampleID: task.SampleID, Height: 1, Width: 1, Channels: 1, Pixels: []byte{7}}, nil
	}
	col := &batchCollector{}
	runRouter(t, b, quick,
		HandleBatch("decode", messages.TopicDecodeTasks, messages.TopicImages,
			messages.UnmarshalDecodeTasks, messages.AppendImages, messages.MarshalDecodeTask, decode),
		col.route("check", messages.TopicImages))
	tasks := []messages.DecodeTask{{RunID: "run", Epoch: 1, SampleID: 0, Key: "a"}, {RunID: "run", Epoch: 1, SampleID: 1, Key: "b"},
		{RunID: "run", Epoch: 1, SampleID: 2, Key: "c"}}
	p, err := messages.MarshalDecodeTasks(tasks)
	if err != nil {
		t.Fatal(err)
	}
	sendAll(t, b, messages.TopicDecodeTasks, string(p))
	if ids, _ := col.ids(t, 2); !slices.Equal(ids, []uint64{0, 2}) {
		t.Errorf("images of samples %v, want 0 and 2", ids)
	}
	m := deadLetters(t, b, 1)[0]
	if r := m.Header.Get(messages.MetaReason); !strings.Contains(r, "gave up after 4 deliveries") || !strings.Contains(r, "store unavailable") {
		t.Errorf("reason %q", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls[1] != 4 || calls[0] != 4 {
		t.Errorf("calls per sample %v, want 4 deliveries of the batch", calls)
	}
}

// TestDeliveryParts: a message of four view groups settled per sample: one
// dead-lettered alone, one nacked, so the message comes back whole; once
// every part is acked it is gone.
func TestDeliveryParts(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	provision(t, b, edge(messages.TopicViews, "train"))
	groups := make([]messages.ViewGroup, 4)
	for i := range groups {
		groups[i] = messages.ViewGroup{RunID: "run", Epoch: 1, SampleID: uint64(10 + i), Split: "train",
			NViews: 2, Height: 1, Width: 1, Channels: 1, Pixels: []byte{1, 2}}
	}
	deliveries := make(chan int, 8)
	runRouter(t, b, quick, Sink("train", messages.TopicViews, messages.UnmarshalViewGroups,
		func(_ context.Context, d *Delivery[[]messages.ViewGroup]) error {
			deliveries <- int(d.Deliveries())
			parts := d.Parts(len(d.Value), func(i int) ([]byte, error) { return messages.MarshalViewGroup(d.Value[i]) })
			if d.Deliveries() > 1 {
				for _, p := range parts {
					if err := p.Ack(); err != nil {
						return err
					}
				}
				return nil
			}
			for i, p := range parts {
				var err error
				switch i {
				case 1:
					err = p.DeadLetter(errors.New("3 views, want 2"))
				case 3:
					err = p.Nak()
				default:
					err = p.Ack()
				}
				if err != nil {
					return err
				}
			}
			if err := parts[0].Ack(); !errors.Is(err, ErrSettled) {
				return fmt.Errorf("second ack: %v", err)
			}
			return nil
		}))
	p, err := messages.MarshalViewGroups(groups)
	if err != nil {
		t.Fatal(err)
	}
	sendAll(t, b, messages.TopicViews, string(p))
	for want := 1; want <= 2; want++ {
		select {
		case n := <-deliveries:
			if n != want {
				t.Fatalf("delivery %d, want %d", n, want)
			}
		case <-time.After(stallLimit):
			t.Fatalf("no delivery %d", want)
		}
	}
	m := deadLetters(t, b, 1)[0]
	dl := messages.DeadLetter{Payload: m.Data, SourceTopic: m.Header.Get(messages.MetaSourceTopic)}
	if _, _, ids, ok := dl.Samples(); !ok || !slices.Equal(ids, []uint64{11}) {
		t.Errorf("dead letter names %v (ok %v), want sample 11", ids, ok)
	}
	if r := m.Header.Get(messages.MetaReason); !strings.Contains(r, "rejected: 3 views") {
		t.Errorf("reason %q", r)
	}
	drained(t, b, messages.TopicViews) // acked once every part was
}

// TestSinkWindowCountsSamples: a Sink's window (its consumer's
// MaxAckPending) counts the samples of the messages it holds, not the
// messages: with a window of 10 and 4 view groups to a message it holds 3
// messages (12 samples: the last one's weight is taken beyond the free
// slots) and asks for no more until one is settled; every message then
// comes once. The trainer's window is sized in samples (TrainPending) so
// that it holds whole batches however augment packed the views.
func TestSinkWindowCountsSamples(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	e := edge(messages.TopicViews, "train")
	e.Consumer.MaxAckPending = 10
	provision(t, b, e)
	held := make(chan *Delivery[[]messages.ViewGroup], 16)
	runRouter(t, b, quick, Sink("train", messages.TopicViews, messages.UnmarshalViewGroups,
		func(_ context.Context, d *Delivery[[]messages.ViewGroup]) error {
			held <- d
			return nil
		}))
	const msgs, per = 6, 4
	var payloads []string
	for m := range msgs {
		groups := make([]messages.ViewGroup, per)
		for i := range groups {
			groups[i] = messages.ViewGroup{RunID: "run", Epoch: 1, SampleID: uint64(per*m + i), Split: "train",
				NViews: 2, Height: 1, Width: 1, Channels: 1, Pixels: []byte{1, 2}}
		}
		p, err := messages.MarshalViewGroups(groups)
		if err != nil {
			t.Fatal(err)
		}
		if n := messages.Samples(p); n != per {
			t.Fatalf("messages.Samples: %d, want %d", n, per)
		}
		payloads = append(payloads, string(p))
	}
	sendAll(t, b, messages.TopicViews, payloads...)
	take := func() *Delivery[[]messages.ViewGroup] {
		t.Helper()
		select {
		case d := <-held:
			return d
		case <-time.After(stallLimit):
			t.Fatal("no delivery")
			return nil
		}
	}
	var got []*Delivery[[]messages.ViewGroup]
	for range 3 {
		got = append(got, take())
	}
	// The puller is full: no pull request waits at the server, so no
	// fourth message can come however long one waits.
	cons, err := b.js.Consumer(t.Context(), messages.TopicViews, "train")
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumWaiting == 0 {
			// The consumer's NumPending is a running count that nats-server
			// says races its own updates (2.15.3, consumer.checkNumPending):
			// it read 0 once in CI with 3 messages undelivered. The
			// stream's count says none was acknowledged or lost.
			if n := streamMsgs(t, b, messages.TopicViews); info.NumAckPending != 3 || n != msgs {
				t.Fatalf("%d messages held, %d in the stream; want 3 and %d", info.NumAckPending, n, msgs)
			}
			break
		}
		runtime.Gosched()
	}
	if len(held) != 0 {
		t.Fatalf("a fourth message arrived with the window full")
	}
	ids := map[uint64]int{}
	ack := func(d *Delivery[[]messages.ViewGroup]) {
		t.Helper()
		for _, g := range d.Value {
			ids[g.SampleID]++
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range got {
		ack(d)
	}
	for range msgs - 3 {
		ack(take())
	}
	if len(ids) != msgs*per {
		t.Fatalf("%d samples delivered, want %d", len(ids), msgs*per)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("sample %d delivered %d times", id, n)
		}
	}
}

// TestPack: the outputs of one input are packed, in order, into payloads
// that fit room, each output encoded about once (the first one more, to
// price a sample): the rule that stops a batch of 224x224 view pairs from
// being copied once per halving.
func TestPack(t *testing.T) {
	view := func(id uint64, side int) messages.Image {
		return messages.Image{RunID: "run", Epoch: 1, SampleID: id, Label: 0, Split: "train",
			Height: uint32(side), Width: uint32(side), Channels: 3, Pixels: make([]byte, side*side*3)}
	}
	sides := func(s ...int) []messages.Image {
		out := make([]messages.Image, len(s))
		for i, side := range s {
			out[i] = view(uint64(i), side)
		}
		return out
	}
	same := func(n, side int) []messages.Image {
		s := make([]int, n)
		for i := range s {
			s[i] = side
		}
		return sides(s...)
	}
	one, err := messages.MarshalImage(view(0, 16)) // 768 pixel bytes
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		outs     []messages.Image
		room     int
		payloads int   // want
		rejected []int // want, in order
		encoded  int   // most samples encoded, all calls together
	}{
		{"all fit in one", same(64, 16), 1 << 20, 1, nil, 65},
		{"three per payload", same(64, 16), 3 * len(one), 22, nil, 65},
		{"one per payload", same(5, 16), len(one), 5, nil, 6},
		{"later ones larger than the first", sides(16, 16, 16, 24, 24, 24, 16), 3 * len(one), 5, nil, 13},
		{"none fits alone", same(3, 16), len(one) - 1, 0, []int{0, 1, 2}, 4},
		{"a single output", same(1, 16), 1 << 20, 1, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			encoded := 0
			encode := func(dst []byte, ms []messages.Image) ([]byte, error) {
				encoded += len(ms)
				return messages.AppendImages(dst, ms)
			}
			from := make([]int, len(tc.outs))
			for i := range from {
				from[i] = i
			}
			var rejected []int
			reject := func(i int, reason error) error {
				if !errors.Is(reason, ErrTooLarge) {
					t.Errorf("sample %d rejected for %v, want ErrTooLarge", i, reason)
				}
				rejected = append(rejected, i)
				return nil
			}
			bufs := new(bufpool.Pool)
			got, err := pack("test", tc.outs, from, bufs, encode, tc.room, reject)
			if err != nil {
				t.Fatal(err)
			}
			// What pack gave back to reuse is none of its payloads.
			for free := bufs.Get(); free != nil; free = bufs.Get() {
				for _, p := range got {
					if &free[:1][0] == &p[:1][0] {
						t.Fatalf("a payload's buffer is also free for reuse")
					}
				}
			}
			var ids []uint64
			for _, p := range got {
				if len(p) > tc.room {
					t.Errorf("payload of %d bytes, room %d", len(p), tc.room)
				}
				ms, err := messages.UnmarshalImages(p)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range ms {
					ids = append(ids, m.SampleID)
				}
			}
			var want []uint64
			for i := range tc.outs {
				if !slices.Contains(tc.rejected, i) {
					want = append(want, uint64(i))
				}
			}
			if len(got) != tc.payloads || !slices.Equal(ids, want) || !slices.Equal(rejected, tc.rejected) {
				t.Errorf("%d payloads of samples %v, rejected %v; want %d of %v, rejected %v", len(got), ids, rejected, tc.payloads, want, tc.rejected)
			}
			if encoded > tc.encoded {
				t.Errorf("encoded %d samples, want at most %d", encoded, tc.encoded)
			}
		})
	}
}

// BenchmarkPack packs the outputs of one input of bus.batch's default 64
// samples under the default 1 MiB max_payload: view pairs of 224x224x3
// (three per payload) and of 32x32x3 (all in one), through the real codec.
//
//	go test -run '^$' -bench BenchmarkPack -benchmem ./bus/
func BenchmarkPack(b *testing.B) {
	for _, side := range []int{224, 32} {
		b.Run(fmt.Sprintf("views%d", side), func(b *testing.B) {
			outs := make([]messages.ViewGroup, 64)
			from := make([]int, len(outs))
			for i := range outs {
				outs[i] = messages.ViewGroup{RunID: "bench", Epoch: 1, SampleID: uint64(i), Split: "train",
					NViews: 2, Height: uint32(side), Width: uint32(side), Channels: 3, Pixels: make([]byte, 2*side*side*3)}
				from[i] = i
			}
			reject := func(i int, reason error) error { return reason }
			b.SetBytes(int64(len(outs) * len(outs[0].Pixels)))
			bufs := new(bufpool.Pool)
			for b.Loop() {
				payloads, err := pack("bench", outs, from, bufs, messages.AppendViewGroups, 1<<20-100, reject)
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range payloads { // published, as the router does
					bufs.Put(p)
				}
			}
		})
	}
}
