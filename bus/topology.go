package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/messages"
)

// WorkQueue is one pipeline edge: a WorkQueue stream named after its topic
// (one subject, the topic itself) and the one durable pull consumer that all
// replicas of the reading stage share, so that adding a worker splits the work.
type WorkQueue struct {
	Topic      string
	MaxMsgs    int64         // capacity; a full stream rejects publishes (the publisher waits); default 4096
	MaxBytes   int64         // capacity in bytes; default 1 GiB
	Duplicates time.Duration // window in which a re-published message id is dropped; default 2 min
	// Memory keeps the stream in the server's memory instead of its store
	// directory: cheaper per message, but a NATS restart loses the stream
	// and what it held. The bus creates such a stream again wherever it
	// finds it missing, and Generation tells a feeder that it must feed
	// again (docs/operations.md, "Stream storage and a NATS restart").
	Memory   bool
	Consumer Consumer
}

// Consumer is a durable pull consumer. Its Name is also the name of the
// Router route that reads it; each worker fetches as many messages as it
// has free handler slots.
type Consumer struct {
	Name          string
	AckWait       time.Duration // an unacknowledged message is redelivered after this; default 60 s
	MaxDeliver    int           // deliveries before the message is dead-lettered; default 5
	MaxAckPending int           // unacknowledged messages in flight over all replicas; default 64
}

// Retention bounds a Limits stream (events, dead letters): oldest first out.
type Retention struct {
	MaxAge   time.Duration // default 7 days
	MaxBytes int64         // default 1 GiB
}

// Topology lists every stream and consumer of a deployment. Provision
// creates or updates them; workers only bind, so a worker leaving never
// deletes a consumer.
type Topology struct {
	Edges      []WorkQueue
	Events     Retention // stream messages.TopicEvents
	DeadLetter Retention // stream messages.TopicDeadLetter
	// Replicas is every stream's number of copies in a JetStream cluster
	// (Limits.Replicas); default 1.
	Replicas int
}

// Limits are the bus's limits, the keys of pipeline.yaml's bus section
// beside the connection's (Config): what every pipeline edge shares
// (Pipeline) and the largest message. Zero values are the defaults
// (DefaultLimits).
type Limits struct {
	// AckWait is how long an unacknowledged message waits before it is
	// redelivered, in [1s, 1h]; default 60 s.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxDeliver is the number of deliveries before a message is
	// dead-lettered, in [1, 1000]; default 5.
	MaxDeliver int `yaml:"max_deliver"`
	// MaxAckPending is the number of unacknowledged messages in flight per
	// consumer, over all its replicas (back-pressure), in [1, 10000];
	// default 64. The train edge's consumer gets two batches more.
	MaxAckPending int `yaml:"max_ack_pending"`
	// MaxPayload is the largest message in bytes, headers included, in
	// [64 KiB, 64 MiB]; default 1 MiB. It is what an embedded server
	// allows (EmbeddedConfig.MaxPayload) and what an external server's
	// max_payload must be; Pipeline does not read it, and the publisher
	// goes by the server's own limit.
	MaxPayload int `yaml:"max_payload"`
	// MaxMsgs is each edge stream's capacity, in [16, 10^7]; default 4096.
	// A full stream makes the producer wait.
	MaxMsgs int64 `yaml:"stream_max_msgs"`
	// MaxBytes is each edge stream's capacity in bytes, in [1 MiB, 1 TiB]
	// and at least MaxPayload; default 1 GiB. A full stream makes the
	// producer wait; in memory (Storage) it is the server's RAM a stream
	// may take.
	MaxBytes int64 `yaml:"stream_max_bytes"`
	// Batch is how many samples travel in one message on the pipeline's
	// edges, in [1, messages.MaxBatch]; default 256 (docs/benchmarks.md).
	// The feeder packs that many decode tasks per message, fewer where
	// their images' encoded sizes reach MaxPayload (feeder.Split); decode
	// and augment pass on what survives of each, split where it would not
	// fit MaxPayload. 1 sends every sample alone, as before batches
	// existed.
	Batch int `yaml:"batch"`
	// Replicas is each stream's number of copies, in [1, 5]; default 1.
	// A JetStream cluster of 3 servers takes 3 so that a stream survives
	// the loss of one; a single server refuses more than 1.
	Replicas int `yaml:"replicas"`
	// Storage is where the image and view streams keep their messages:
	// StorageFile (a NATS restart loses nothing), StorageMemory (less CPU
	// per sample; a NATS restart loses what they held, and the feeder
	// feeds the epoch again) or StorageAuto (the default), which Resolve
	// turns into one of them. The decode task stream is always file
	// storage: the feeder publishes an epoch once.
	Storage string `yaml:"storage"`
}

// Values of Limits.Storage.
const (
	// StorageAuto is memory on an embedded server, whose store dies with
	// its process so that file storage would keep nothing a restart could
	// use, where its JetStream memory holds both streams; file otherwise.
	StorageAuto   = "auto"
	StorageFile   = "file"
	StorageMemory = "memory"
)

// Resolve returns l with StorageAuto (or no storage) replaced by the
// storage it means on e, this process's embedded server, or on any other
// server where e is nil.
func (l Limits) Resolve(e *Embedded) Limits {
	var memory int64 = -1
	if e != nil {
		memory = e.MaxMemory()
	}
	return l.resolve(memory)
}

// resolve is Resolve on a server whose JetStream memory is memory bytes,
// negative for one that is not embedded. The server reserves each memory
// stream's MaxBytes when it creates the stream, and refuses one that does
// not fit: hence file on an embedded server too small for Pipeline's
// memory edges.
func (l Limits) resolve(memory int64) Limits {
	if l.Storage != "" && l.Storage != StorageAuto {
		return l
	}
	l.Storage = StorageMemory
	var need int64
	for _, e := range Pipeline(l, 0).Edges {
		if e.Memory {
			need += orDefault(e.MaxBytes, defaultMaxBytes)
		}
	}
	if memory < need {
		l.Storage = StorageFile
	}
	return l
}

// storageName is st as bus.storage names it.
func storageName(st jetstream.StorageType) string {
	if st == jetstream.MemoryStorage {
		return StorageMemory
	}
	return StorageFile
}

// Bounds of Limits fields.
const (
	minAckWait       = time.Second
	maxAckWait       = time.Hour
	maxMaxDeliver    = 1000
	maxMaxAckPending = 10000
	minMaxPayload    = 64 << 10
	minMaxMsgs       = 16
	maxMaxMsgs       = 10_000_000
	minMaxBytes      = 1 << 20
	maxMaxBytes      = 1 << 40
	maxReplicas      = 5 // JetStream's own bound
)

// DefaultLimits returns the defaults of every field.
func DefaultLimits() Limits {
	return Limits{AckWait: defaultAckWait, MaxDeliver: defaultMaxDeliver, MaxAckPending: defaultMaxAckPending,
		MaxPayload: defaultMaxPayload, MaxMsgs: defaultMaxMsgs, MaxBytes: defaultMaxBytes, Batch: defaultBatch,
		Replicas: defaultReplicas, Storage: StorageAuto}
}

// Validate reports every field of l out of range, each a *field.Error
// (config/field) named by its key and wrapping ErrConfig. It checks l as
// given: a zero limit is refused (Pipeline and StartEmbedded take zeros as
// their defaults).
func (l Limits) Validate() error {
	k := field.NewChecker(ErrConfig)
	if l.AckWait < minAckWait || l.AckWait > maxAckWait {
		k.Add("ack_wait", l.AckWait, "a duration in [1s, 1h]")
	}
	k.IntIn("max_deliver", l.MaxDeliver, 1, maxMaxDeliver)
	k.IntIn("max_ack_pending", l.MaxAckPending, 1, maxMaxAckPending)
	k.IntIn("max_payload", l.MaxPayload, minMaxPayload, maxServerPayload)
	k.Int64In("stream_max_msgs", l.MaxMsgs, minMaxMsgs, maxMaxMsgs)
	if l.MaxBytes < minMaxBytes || l.MaxBytes > maxMaxBytes || l.MaxBytes < int64(l.MaxPayload) {
		k.Add("stream_max_bytes", l.MaxBytes, "an integer in [1048576, 1099511627776], at least max_payload")
	}
	k.IntIn("batch", l.Batch, 1, messages.MaxBatch)
	k.IntIn("replicas", l.Replicas, 1, maxReplicas)
	if l.Storage != StorageAuto && l.Storage != StorageFile && l.Storage != StorageMemory {
		k.Add("storage", l.Storage, `"auto", "file" or "memory"`)
	}
	return k.Err()
}

// TrainPending is the train consumer's in-flight window: the trainer holds
// up to two batches of trainBatch samples unacknowledged until their
// optimizer steps, plus a message's samples (Batch), plus the other edges'
// window. The trainer's Sink counts it in samples; the server counts
// messages, of which it is then an upper bound, since every message
// carries at least one sample. The message term keeps the trainer going: a
// message is acknowledged once its last sample is stepped, and the trainer
// steps in arrival order, so the stepped samples of one message at most
// (fewer than Batch) still hold slots while it waits for a batch.
// Counted in messages of Batch samples, the window stalled the trainer
// wherever views were packed fewer to a message (224 px pairs: 3 to a MiB).
func (l Limits) TrainPending(trainBatch int) int {
	return 2*trainBatch + orDefault(l.Batch, defaultBatch) + orDefault(l.MaxAckPending, defaultMaxAckPending)
}

// Pipeline is supflow's topology: decode tasks -> decode, images ->
// augment, views -> train; the image and view streams in memory where
// l.Storage is StorageMemory (Resolve l first: Pipeline takes StorageAuto
// for file). The train consumer holds up to two batches
// unacknowledged until their optimizer steps (TrainPending); its AckWait
// need not cover a step, since the router keeps what a Sink holds alive,
// so a view lost with a NATS connection comes back after one AckWait.
func Pipeline(l Limits, trainBatch int) Topology {
	edge := func(topic, consumer string, pending int, memory bool) WorkQueue {
		return WorkQueue{Topic: topic, MaxMsgs: l.MaxMsgs, MaxBytes: l.MaxBytes, Memory: memory, Consumer: Consumer{
			Name: consumer, AckWait: l.AckWait, MaxDeliver: l.MaxDeliver, MaxAckPending: pending}}
	}
	pending := orDefault(l.MaxAckPending, defaultMaxAckPending)
	memory := l.Storage == StorageMemory
	return Topology{Edges: []WorkQueue{
		edge(messages.TopicDecodeTasks, "decode", pending, false),
		edge(messages.TopicImages, "augment", pending, memory),
		edge(messages.TopicViews, "train", l.TrainPending(trainBatch), memory),
	}, Replicas: l.Replicas}
}

// DefaultTopology is Pipeline with default limits and room for batches of
// up to 480 samples on the train edge.
func DefaultTopology() Topology { return Pipeline(Limits{}, 480) }

const (
	defaultMaxMsgs       = 4096
	defaultMaxBytes      = 1 << 30
	defaultDuplicates    = 2 * time.Minute
	defaultAckWait       = 60 * time.Second
	defaultMaxDeliver    = 5
	defaultMaxAckPending = 64
	defaultBatch         = 256
	defaultMaxPayload    = 1 << 20 // nats-server's own default
	defaultMaxAge        = 7 * 24 * time.Hour
	defaultReplicas      = 1
)

// ErrTopology wraps an invalid topology or a failure to provision it.
var ErrTopology = errors.New("bus: topology")

// setDefaults fills in t's zero values, in a copy of its edges: Validate and
// checked work on a copy of a caller's Topology, whose edges it shares.
func (t *Topology) setDefaults() {
	t.Edges = slices.Clone(t.Edges)
	for i := range t.Edges {
		e := &t.Edges[i]
		e.MaxMsgs = orDefault(e.MaxMsgs, defaultMaxMsgs)
		e.MaxBytes = orDefault(e.MaxBytes, defaultMaxBytes)
		e.Duplicates = orDefault(e.Duplicates, defaultDuplicates)
		e.Consumer.AckWait = orDefault(e.Consumer.AckWait, defaultAckWait)
		e.Consumer.MaxDeliver = orDefault(e.Consumer.MaxDeliver, defaultMaxDeliver)
		e.Consumer.MaxAckPending = orDefault(e.Consumer.MaxAckPending, defaultMaxAckPending)
	}
	for _, r := range []*Retention{&t.Events, &t.DeadLetter} {
		r.MaxAge = orDefault(r.MaxAge, defaultMaxAge)
		r.MaxBytes = orDefault(r.MaxBytes, defaultMaxBytes)
	}
	t.Replicas = orDefault(t.Replicas, defaultReplicas)
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Validate checks names and limits; zero values are defaults.
func (t Topology) Validate() error {
	_, err := t.checked()
	return err
}

// checked validates t and returns it with the defaults filled in.
func (t Topology) checked() (Topology, error) {
	t.setDefaults()
	var errs []error
	seen := map[string]bool{messages.TopicEvents: true, messages.TopicDeadLetter: true}
	for _, e := range t.Edges {
		if err := checkName("topic", e.Topic); err != nil {
			errs = append(errs, err)
		}
		if seen[e.Topic] {
			errs = append(errs, fmt.Errorf("topic %q used twice", e.Topic))
		}
		seen[e.Topic] = true
		if err := checkName("consumer", e.Consumer.Name); err != nil {
			errs = append(errs, err)
		}
		c := e.Consumer
		if e.MaxMsgs < 0 || e.MaxBytes < 0 || e.Duplicates < 0 || c.AckWait < 0 || c.MaxDeliver < 0 || c.MaxAckPending < 0 {
			errs = append(errs, fmt.Errorf("edge %s: negative limit", e.Topic))
		}
	}
	for _, r := range []Retention{t.Events, t.DeadLetter} {
		if r.MaxAge < 0 || r.MaxBytes < 0 {
			errs = append(errs, errors.New("negative retention"))
		}
	}
	if t.Replicas < 0 || t.Replicas > maxReplicas {
		errs = append(errs, fmt.Errorf("replicas %d: want [1, %d]", t.Replicas, maxReplicas))
	}
	if len(errs) > 0 {
		return t, fmt.Errorf("%w: %w", ErrTopology, errors.Join(errs...))
	}
	return t, nil
}

// checkName rejects what NATS forbids in stream and consumer names.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s name is empty", what)
	}
	if strings.ContainsAny(s, ".*> \t\r\n/\\") {
		return fmt.Errorf("%s name %q contains one of . * > / \\ or whitespace", what, s)
	}
	return nil
}

// consumer creates or updates the durable consumer of e.
func (b *Bus) consumer(ctx context.Context, e WorkQueue) error {
	c := e.Consumer
	cfg := jetstream.ConsumerConfig{
		Durable:       c.Name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		// The server redelivers without limit; the router dead-letters
		// a message that failed c.MaxDeliver deliveries. A server-side
		// limit would also count deliveries to a worker that died or hung
		// holding the message, and the server silently stops redelivering
		// a message at its limit: it would never be dead-lettered, and
		// its epoch would never complete.
		MaxDeliver:    -1,
		Metadata:      map[string]string{metaMaxDeliver: strconv.Itoa(c.MaxDeliver)},
		MaxAckPending: c.MaxAckPending,
		FilterSubject: e.Topic,
	}
	if err := retryRaces(ctx, func() error {
		// Every process provisions at start-up: one that finds the
		// consumer as it wants it writes nothing, so that concurrent
		// starts do not race each other's updates in the server's store.
		have, err := b.js.Consumer(ctx, e.Topic, c.Name)
		switch {
		case err == nil && sameConsumer(have.CachedInfo().Config, cfg):
			return nil
		case errors.Is(err, jetstream.ErrNotPullConsumer):
			// A push consumer of a supflow before pull consumers: it
			// cannot become a pull consumer in place, and a work-queue
			// stream takes no second consumer of its subject. Its
			// unacknowledged messages stay in the stream and go to the
			// new consumer.
			b.logger.Warn("replacing a push consumer by a pull consumer", "stream", e.Topic, "consumer", c.Name)
			if err := b.js.DeleteConsumer(ctx, e.Topic, c.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return err
			}
		}
		_, err = b.js.CreateOrUpdateConsumer(ctx, e.Topic, cfg)
		return err
	}); err != nil {
		if isWorkQueueConflict(err) {
			return fmt.Errorf("%w: consumer %s on %s: %w; %s", ErrTopology, c.Name, e.Topic, err, b.readersOf(ctx, e))
		}
		return fmt.Errorf("%w: consumer %s on %s: %w", ErrTopology, c.Name, e.Topic, err)
	}
	return nil
}

// Work-queue conflicts: a work-queue stream hands each subject to one
// consumer, so another reader of the edge's subject (an observer's
// consumer; on servers that count it, a mirror's) refuses supflow's own.
const (
	errCodeWQNotUnique          jetstream.ErrorCode = 10100 // filtered consumer not unique on workqueue stream
	errCodeWQMultipleUnfiltered jetstream.ErrorCode = 10099 // multiple non-filtered consumers not allowed on workqueue stream
)

func isWorkQueueConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeWQNotUnique || apiErr.ErrorCode == errCodeWQMultipleUnfiltered)
}

// readersOf names what else reads e's work-queue stream (its other
// consumers, the streams that mirror or source it) and what to do, for
// the error of a consumer the server refused. Listing is best effort: a
// failure leaves the names out, not the advice.
func (b *Bus) readersOf(ctx context.Context, e WorkQueue) string {
	var consumers, streams []string
	if st, err := b.js.Stream(ctx, e.Topic); err == nil {
		for name := range st.ConsumerNames(ctx).Name() {
			if name != e.Consumer.Name {
				consumers = append(consumers, name)
			}
		}
	}
	for si := range b.js.ListStreams(ctx).Info() {
		c := si.Config
		if c.Mirror != nil && c.Mirror.Name == e.Topic {
			streams = append(streams, c.Name)
		}
		for _, src := range c.Sources {
			if src != nil && src.Name == e.Topic {
				streams = append(streams, c.Name)
			}
		}
	}
	return fmt.Sprintf("stream %s is a work queue: each message goes to one consumer, so supflow's must be its only reader "+
		"(other consumers: %s; streams mirroring or sourcing it: %s): delete the other consumers (nats consumer rm %s NAME), "+
		"and the mirrors if the server still refuses (older servers count a mirror's consumer), and observe the edge without taking messages instead: a core NATS subscription on subject %s, or a get by sequence "+
		"(docs/operations.md, 'Watching streams')", e.Topic, orNone(consumers), orNone(streams), e.Topic, e.Topic)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none found"
	}
	return strings.Join(names, ", ")
}

// sameConsumer reports whether have has every setting of want that
// consumer sets (the server fills in others).
func sameConsumer(have, want jetstream.ConsumerConfig) bool {
	return have.Durable == want.Durable && have.DeliverSubject == want.DeliverSubject &&
		have.DeliverPolicy == want.DeliverPolicy &&
		have.AckPolicy == want.AckPolicy && have.AckWait == want.AckWait && have.MaxDeliver == want.MaxDeliver &&
		have.MaxAckPending == want.MaxAckPending && have.FilterSubject == want.FilterSubject &&
		have.Metadata[metaMaxDeliver] == want.Metadata[metaMaxDeliver]
}

// ResetConsumer deletes and re-creates the consumer of t's edge topic, so
// that what a reader that died held unacknowledged (up to the consumer's
// MaxAckPending, for its AckWait) is delivered again at once instead of
// blocking the consumer's in-flight window. Only the single reader of an
// edge may call it, before it subscribes (the trainer, at start-up): the
// deliveries of a live reader would be forgotten.
func (b *Bus) ResetConsumer(ctx context.Context, t Topology, topic string) error {
	t, err := t.checked()
	if err != nil {
		return err
	}
	for _, e := range t.Edges {
		if e.Topic != topic {
			continue
		}
		if err := b.deleteConsumer(ctx, e.Topic, e.Consumer.Name); err != nil {
			return fmt.Errorf("%w: reset consumer %s on %s: %w", ErrTopology, e.Consumer.Name, e.Topic, err)
		}
		return b.consumer(ctx, e)
	}
	return fmt.Errorf("%w: no edge %q", ErrTopology, topic)
}

// deleteConsumer deletes the consumer and returns once none of that name
// is left. nats-server forgets a deleted consumer before it removes its
// files: another process's Provision that creates the consumer in between
// gets a live consumer whose files the delete then removes, so it is gone
// after the server restarts (nats-server 2.15.3; TestResetWhileProvisioning).
// Such a consumer is deleted too, until a delete has no create beside it:
// only for a consumer whose one reader deletes it (ResetConsumer), since a
// reader that started in between would lose its consumer.
func (b *Bus) deleteConsumer(ctx context.Context, stream, name string) error {
	for {
		err := retryRaces(ctx, func() error {
			err := b.js.DeleteConsumer(ctx, stream, name)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
		_, err = b.js.Consumer(ctx, stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// metaMaxDeliver is the consumer metadata key holding the delivery count at
// which the router dead-letters a failing message.
const metaMaxDeliver = "supflow_max_deliver"

// Provision creates or updates every stream and consumer of t. It is
// idempotent, so each process may call it at start-up.
func (b *Bus) Provision(ctx context.Context, t Topology) error {
	t, err := t.checked()
	if err != nil {
		return err
	}
	for _, e := range t.Edges {
		if err := b.edge(ctx, e, t.Replicas); err != nil {
			return err
		}
		b.remember(e, t.Replicas)
	}
	for _, l := range []struct {
		topic string
		r     Retention
	}{{messages.TopicEvents, t.Events}, {messages.TopicDeadLetter, t.DeadLetter}} {
		if err := b.stream(ctx, jetstream.StreamConfig{
			Name:      l.topic,
			Subjects:  []string{l.topic},
			Retention: jetstream.LimitsPolicy,
			Storage:   jetstream.FileStorage,
			Discard:   jetstream.DiscardOld,
			MaxAge:    l.r.MaxAge,
			MaxBytes:  l.r.MaxBytes,
			Replicas:  t.Replicas,
		}); err != nil {
			return fmt.Errorf("%w: stream %s: %w", ErrTopology, l.topic, err)
		}
	}
	return nil
}

// storage is the JetStream storage of e's stream.
func (e WorkQueue) storage() jetstream.StorageType {
	if e.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// edge creates or updates e's stream and consumer.
func (b *Bus) edge(ctx context.Context, e WorkQueue, replicas int) error {
	if err := b.stream(ctx, jetstream.StreamConfig{
		Name:       e.Topic,
		Subjects:   []string{e.Topic},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    e.storage(),
		Discard:    jetstream.DiscardNew,
		MaxMsgs:    e.MaxMsgs,
		MaxBytes:   e.MaxBytes,
		Duplicates: e.Duplicates,
		Replicas:   replicas,
	}); err != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrTopology, e.Topic, err)
	}
	return b.consumer(ctx, e)
}

// stream creates or updates a stream.
func (b *Bus) stream(ctx context.Context, cfg jetstream.StreamConfig) error {
	return retryRaces(ctx, func() error {
		// As for consumers, a stream found as wanted is not written: an
		// update races a consumer's creation in nats-server's file store
		// (2.15.3; its data race showed under -race in
		// TestResetWhileProvisioning, every process provisioning at start-up).
		s, err := b.js.Stream(ctx, cfg.Name)
		if err == nil && sameStream(s.CachedInfo().Config, cfg) {
			return nil
		}
		if err == nil && s.CachedInfo().Config.Storage != cfg.Storage {
			return b.moveStorage(ctx, s.CachedInfo(), cfg)
		}
		_, err = b.js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
}

// moveStorage moves an edge's stream to the storage bus.storage asks for.
// JetStream cannot change a stream's storage in place: an empty stream is
// deleted and created again; one that holds messages is left as it is,
// with an error that says what to do, since deleting it would lose them.
func (b *Bus) moveStorage(ctx context.Context, have *jetstream.StreamInfo, cfg jetstream.StreamConfig) error {
	from, to := storageName(have.Config.Storage), storageName(cfg.Storage)
	if n := have.State.Msgs; n > 0 {
		return fmt.Errorf("stream %s has %s storage and holds %d messages, bus.storage asks for %s: "+
			"let the pipeline drain it with the old bus.storage, or delete it (nats stream rm %s), losing them",
			cfg.Name, from, n, to, cfg.Name)
	}
	b.logger.Warn("moving an empty stream to the storage bus.storage asks for", "stream", cfg.Name, "from", from, "to", to)
	if err := b.js.DeleteStream(ctx, cfg.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err := b.js.CreateOrUpdateStream(ctx, cfg)
	return err
}

// sameStream reports whether have has every setting that Provision gives
// want; a zero limit in want is the server's default, whatever it filled in.
func sameStream(have, want jetstream.StreamConfig) bool {
	same := func(h, w int64) bool { return w == 0 || h == w }
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Storage == want.Storage && have.Discard == want.Discard && have.Replicas == want.Replicas &&
		same(have.MaxMsgs, want.MaxMsgs) && same(have.MaxBytes, want.MaxBytes) &&
		same(int64(have.Duplicates), int64(want.Duplicates)) && same(int64(have.MaxAge), int64(want.MaxAge))
}

// retryRaces calls f again, with backoff, while the server answers with
// an internal error (code 500) or says that the consumer being updated does
// not exist (err_code 10149), at most raceAttempts times in all. Every process
// provisions at start-up and the trainer resets its consumer then: updates
// of one consumer from several processes at once can collide in the
// server's file store ("open .../obs/train/meta.inf.tmp: no such file or
// directory" while another process recreated it), and a create-or-update
// that meets the trainer's delete halfway fails with 10149 (the feeder
// exited on it once in CI).
func retryRaces(ctx context.Context, f func() error) error {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		var apiErr *jetstream.APIError
		// A request that timed out while ctx lives (the jetstream API's own
		// per-request default, 5 s) is retried too: creating an R3 stream
		// waits for the cluster's consensus, which outlasted it on loaded
		// machines (the HA compose's stages exited at start-up with
		// "context deadline exceeded").
		timedOut := ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout))
		if err == nil || attempt == raceAttempts || !timedOut && (!errors.As(err, &apiErr) ||
			apiErr.Code < 500 && apiErr.ErrorCode != jetstream.JSErrCodeConsumerDoesNotExist ||
			apiErr.ErrorCode == errCodeReplicasUnsupported) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// errCodeReplicasUnsupported is the server's answer (code 500, but no
// race) to bus.replicas above 1 on a server outside a cluster: final.
const errCodeReplicasUnsupported = 10074

// raceAttempts bounds retryRaces: about 3.5 s of backoff, which outlasts
// the start-up provisioning of a whole pipeline on a loaded machine (five
// calls, 0.75 s, did not once in CI), plus up to 5 s a request that timed
// out.
const raceAttempts = 8
