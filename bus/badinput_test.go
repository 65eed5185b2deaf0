package bus

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/supflow/supflow/messages"
)

// badCase is one raw payload a stage input must dead-letter.
type badCase struct {
	name    string
	payload []byte
	class   string // reason label of the dead-letter counter
	reason  string // text the supflow_reason header must contain
}

// badPayloads derives the malformed variants of good, a valid message of a
// subject's type: lenAt is the offset of a declared length field of lenSize
// bytes (2: a str, 4: pixels), other a valid message of another type.
func badPayloads(good, other []byte, lenAt, lenSize int) []badCase {
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	return []badCase{
		{"wrong schema version", mod(func(b []byte) []byte { b[2] = messages.Version + 1; return b }),
			reasonSchemaVersion, fmt.Sprintf("unsupported format version: %d (this build reads 1 to %d)", messages.Version+1, messages.Version)},
		// Version 2 changed only the Event layout: no pipeline message has one.
		{"version without a layout of the type", mod(func(b []byte) []byte { b[2] = 2; return b }),
			reasonSchemaVersion, "unsupported format version: 2 for"},
		{"truncated", good[:len(good)-1], reasonTruncated, "truncated payload"},
		{"empty", []byte{}, reasonTruncated, "0 bytes, header needs 4"},
		{"declared length over the codec bound", mod(func(b []byte) []byte {
			for i := range lenSize {
				b[lenAt+i] = 0xFF
			}
			return b
		}), reasonTooLarge, "size out of bounds"},
		{"wrong message type", other, reasonWrongType, "wrong message type"},
		{"not a supflow message", []byte("GIF89a\x01\x00\x01\x00"), reasonMalformed, "not a supflow message"},
		{"trailing bytes", append(append([]byte(nil), good...), 0), reasonMalformed, "trailing bytes"},
	}
}

func mustEncode[T any](t *testing.T, enc func(T) ([]byte, error), m T) []byte {
	t.Helper()
	b, err := enc(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadMessagesAreDeadLettered runs supflow's three stage inputs with the
// real codec (decode and augment as Handle routes, train as a Sink) on one
// server, publishes every malformed variant of each input type between good
// messages, and checks that each bad one is dead-lettered once with its
// reason and counted by class on /metrics, while every good one still
// reaches the trainer.
func TestBadMessagesAreDeadLettered(t *testing.T) {
	// 64 KiB max_payload: an image that fits can still make views that do not.
	b := connect(t, startServer(t, EmbeddedConfig{MaxPayload: 64 << 10}).URL())
	provision(t, b, edge(messages.TopicDecodeTasks, "decode"), edge(messages.TopicImages, "augment"), edge(messages.TopicViews, "train"))
	reg := prometheus.NewRegistry()
	cfg := quick
	cfg.Registerer = reg

	var mu sync.Mutex
	trained := map[uint64]int{} // sample id -> deliveries to the trainer
	arrived := make(chan struct{}, 1024)
	runRouter(t, b, cfg,
		Handle("decode", messages.TopicDecodeTasks, messages.TopicImages, messages.UnmarshalDecodeTask, messages.MarshalImage,
			func(_ context.Context, task messages.DecodeTask) (messages.Image, error) {
				return messages.Image{RunID: task.RunID, Epoch: task.Epoch, SampleID: task.SampleID, Label: task.Label,
					Height: 2, Width: 2, Channels: 1, Pixels: []byte{1, 2, 3, 4}}, nil
			}),
		Handle("augment", messages.TopicImages, messages.TopicViews, messages.UnmarshalImage, messages.MarshalViewGroup,
			func(_ context.Context, img messages.Image) (messages.ViewGroup, error) {
				return messages.ViewGroup{RunID: img.RunID, Epoch: img.Epoch, SampleID: img.SampleID, Label: img.Label,
					NViews: 2, Height: img.Height, Width: img.Width, Channels: img.Channels,
					Pixels: append(append([]byte(nil), img.Pixels...), img.Pixels...)}, nil
			}),
		Sink("train", messages.TopicViews, messages.UnmarshalViewGroup,
			func(_ context.Context, d *Delivery[messages.ViewGroup]) error {
				v := d.Value
				mu.Lock()
				trained[v.SampleID]++
				mu.Unlock()
				arrived <- struct{}{}
				if v.NViews != 2 || v.Height != 2 || v.Width != 2 || v.Channels != 1 {
					// As the trainer's Reject: a shape it can never use.
					return d.DeadLetter(messages.Permanent(fmt.Errorf("sample %d: %d views of %dx%dx%d, want 2 of 2x2x1",
						v.SampleID, v.NViews, v.Height, v.Width, v.Channels)))
				}
				return d.Ack()
			}))

	task := func(id uint64) []byte {
		return mustEncode(t, messages.MarshalDecodeTask, messages.DecodeTask{RunID: "run", Epoch: 1, SampleID: id, Key: "k/x.png"})
	}
	image := func(id uint64, side uint32) []byte {
		return mustEncode(t, messages.MarshalImage, messages.Image{RunID: "run", Epoch: 1, SampleID: id,
			Height: side, Width: side, Channels: 1, Pixels: make([]byte, side*side)})
	}
	views := func(id uint64, side uint32) []byte {
		return mustEncode(t, messages.MarshalViewGroup, messages.ViewGroup{RunID: "run", Epoch: 1, SampleID: id,
			NViews: 2, Height: side, Width: side, Channels: 1, Pixels: make([]byte, 2*side*side)})
	}
	type subject struct {
		topic, handler string
		good           func(id uint64) []byte
		bad            []badCase
	}
	goodTask, goodImage, goodViews := task(0), image(0, 2), views(0, 2)
	subjects := []subject{
		{messages.TopicDecodeTasks, "decode", task,
			badPayloads(goodTask, goodImage, len(goodTask)-len("k/x.png")-2, 2)},
		{messages.TopicImages, "augment", func(id uint64) []byte { return image(id, 2) },
			append(badPayloads(goodImage, goodViews, len(goodImage)-4-4, 4),
				badCase{"output over max_payload", image(299, 200), reasonOutput, "max_payload"})},
		{messages.TopicViews, "train", func(id uint64) []byte { return views(id, 2) },
			append(badPayloads(goodViews, goodTask, len(goodViews)-8-4, 4),
				badCase{"view shape the trainer cannot use", views(399, 3), reasonRejected, "want 2 of 2x2x1"})},
	}

	// good, bad, good, ..., bad, good on every subject.
	wantGood := map[uint64]bool{}
	wantBad := map[string]badCase{} // source topic + payload -> case
	want := map[string]float64{}    // handler/class -> dead letters
	for i, s := range subjects {
		var payloads []string
		id := uint64(100 * (i + 1))
		for _, c := range s.bad {
			payloads = append(payloads, string(s.good(id)), string(c.payload))
			wantGood[id] = true
			id++
			wantBad[s.topic+"/"+string(c.payload)] = c
			want[s.handler+"/"+c.class]++
		}
		payloads = append(payloads, string(s.good(id)))
		wantGood[id] = true
		sendAll(t, b, s.topic, payloads...)
	}

	total := len(wantBad)
	for _, dl := range deadLetters(t, b, total) {
		h := dl.Header
		key := h.Get(messages.MetaSourceTopic) + "/" + string(dl.Data)
		c, ok := wantBad[key]
		if !ok {
			t.Errorf("unexpected dead letter from %s by %s: %q (%s)", h.Get(messages.MetaSourceTopic), h.Get(messages.MetaHandler), dl.Data, h.Get(messages.MetaReason))
			continue
		}
		delete(wantBad, key)
		if r := h.Get(messages.MetaReason); !strings.Contains(r, c.reason) {
			t.Errorf("%s: reason %q, want it to contain %q", c.name, r, c.reason)
		}
		if h.Get(messages.MetaDeliveries) != "1" {
			t.Errorf("%s: dead-lettered at delivery %s, want 1", c.name, h.Get(messages.MetaDeliveries))
		}
	}
	for key, c := range wantBad {
		t.Errorf("%s on %s not dead-lettered", c.name, strings.SplitN(key, "/", 2)[0])
	}

	// Every good message reaches the trainer, whatever came before it.
	stalled := time.NewTimer(stallLimit)
	defer stalled.Stop()
	for {
		mu.Lock()
		missing := 0
		for id := range wantGood {
			if trained[id] == 0 {
				missing++
			}
		}
		rejected := trained[399]
		mu.Unlock()
		if missing == 0 {
			if rejected != 1 {
				t.Errorf("rejected view group delivered %d times, want once", rejected)
			}
			break
		}
		select {
		case <-arrived:
			stalled.Reset(stallLimit)
		case <-stalled.C:
			t.Fatalf("%d good messages never reached the trainer (none for %v)", missing, stallLimit)
		}
	}
	time.Sleep(200 * time.Millisecond) // a nacked message would be back by now
	for _, s := range subjects {
		drained(t, b, s.topic)
	}
	if n := streamMsgs(t, b, messages.TopicDeadLetter); n != uint64(total) {
		t.Errorf("dead-letter stream holds %d messages, want %d", n, total)
	}

	got := scrapeDeadLettered(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("/metrics dead_lettered{%s} = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("/metrics has unexpected dead_lettered{%s} = %v", k, v)
		}
	}
}

// scrapeDeadLettered reads supflow_bus_messages_dead_lettered_total from
// reg served over HTTP as the supflow commands serve /metrics, keyed by
// "handler/reason".
func scrapeDeadLettered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var handler, reason string
		var v float64
		line := sc.Text()
		if !strings.HasPrefix(line, "supflow_bus_messages_dead_lettered_total{") {
			continue
		}
		// supflow_bus_messages_dead_lettered_total{handler_name="x",reason="y"} 1
		if _, err := fmt.Sscanf(strings.NewReplacer(`"`, " ", ",", " ", "}", " ").Replace(line),
			"supflow_bus_messages_dead_lettered_total{handler_name= %s reason= %s %g", &handler, &reason, &v); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[handler+"/"+reason] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
