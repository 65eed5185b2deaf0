package faulttest

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/decode"
)

// TestIntegrationFaultKillWorkers kills the only decode worker and the only
// augment worker with SIGKILL while each holds unacknowledged messages,
// then starts new ones: the messages come back after ack_wait and every
// sample of every epoch is trained exactly once.
func TestIntegrationFaultKillWorkers(t *testing.T) { eachBatch(t, faultKillWorkers) }

func faultKillWorkers(t *testing.T) {
	fc := newCase(t, "kill -9 workers", "SIGKILL to the decode and the augment worker while each holds messages in epoch 1; new ones started", `
dataset: {limit_train: 300, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 300)
	js := fc.js()
	st := fc.startStages()

	n := waitInFlight(t, js, messages.TopicDecodeTasks, "decode", 2*time.Minute)
	st.decode.Kill()
	c.Start("decode-2", "decode")
	m := waitInFlight(t, js, messages.TopicImages, "augment", time.Minute)
	st.augment.Kill()
	c.Start("augment-2", "augment")
	fc.note("in flight when killed: %d decode task messages, %d image messages", n, m)
	c.Wait(st.feed, 4*time.Minute)
	c.Wait(st.train, 4*time.Minute)
	fc.check(entries, 2, nil, st.train.Output())
}

// TestIntegrationFaultConsumerDeleted deletes the decode consumer while
// the decode worker holds epoch 1's tasks, then the augment consumer while
// the augment worker holds images, as `nats consumer rm` would under
// running workers. Each worker finds its consumer gone and creates it
// again as it bound to it; the work-queue streams still hold everything
// not acknowledged, so the new consumers deliver it (what the workers held
// again too: their acknowledgements went to the deleted consumers), and
// every sample of every epoch is trained exactly once.
func TestIntegrationFaultConsumerDeleted(t *testing.T) { eachBatch(t, faultConsumerDeleted) }

func faultConsumerDeleted(t *testing.T) {
	fc := newCase(t, "consumers deleted", "the decode consumer deleted while decode held epoch 1's tasks, then the augment consumer while augment held images (as `nats consumer rm`); the workers kept running", `
dataset: {limit_train: 200, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 200)
	js := fc.js()
	st := fc.startStages()

	var held []int
	for _, e := range []struct{ stream, consumer string }{
		{messages.TopicDecodeTasks, "decode"}, {messages.TopicImages, "augment"},
	} {
		held = append(held, waitInFlight(t, js, e.stream, e.consumer, 2*time.Minute))
		if err := js.DeleteConsumer(t.Context(), e.stream, e.consumer); err != nil {
			t.Fatal(err)
		}
	}
	fc.note("in flight when deleted: %d decode task messages, %d image messages", held[0], held[1])
	c.Wait(st.feed, 4*time.Minute)
	c.Wait(st.train, 4*time.Minute)
	for _, p := range []*clustertest.Proc{st.decode, st.augment} {
		if !strings.Contains(p.Output(), "consumer was missing: created it again") {
			t.Errorf("%s did not log its consumer created again", p.Name())
		}
	}
	fc.check(entries, 2, nil, st.train.Output())
}

// TestIntegrationFaultKillFusedWorker kills the only fused worker (decode
// --augment: decode tasks in, views out) with SIGKILL while it holds
// decode tasks, then starts a new one: the tasks come back after ack_wait
// and every sample of every epoch is trained exactly once, with no images
// edge in between.
func TestIntegrationFaultKillFusedWorker(t *testing.T) { eachBatch(t, faultKillFusedWorker) }

func faultKillFusedWorker(t *testing.T) {
	fc := newCase(t, "kill -9 fused worker", "SIGKILL to the one decode --augment worker while it holds decode tasks in epoch 1; a new one started", `
dataset: {limit_train: 300, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 300)
	js := fc.js()
	w := c.Start("fused", "decode", "--augment")
	train := c.Start("train", "train")
	feed := c.Start("feed", "feed")

	n := waitInFlight(t, js, messages.TopicDecodeTasks, "decode", 2*time.Minute)
	w.Kill()
	c.Start("fused-2", "decode", "--augment")
	fc.note("in flight when killed: %d decode task messages", n)
	c.Wait(feed, 4*time.Minute)
	c.Wait(train, 4*time.Minute)
	fc.check(entries, 2, nil, train.Output())
}

// TestIntegrationFaultNATSRestart restarts the NATS server (JetStream file
// storage, same port) in the middle of the first epoch, for longer than a
// JetStream request's 5 s timeout, while a stream limit holds the feeder
// back mid-epoch: every stage reconnects, the feeder's waiting publish
// goes through after the restart, and both epochs complete with the exact
// set. (The limit is the least the trainer's window allows, 165 messages
// with bus.batch 1: 2 x batch + bus.batch + max_ack_pending. With bus.batch
// 16 an epoch is 19 messages, so the limit does not hold the feeder back;
// the case notes it.)
func TestIntegrationFaultNATSRestart(t *testing.T) { eachBatch(t, faultNATSRestart(bus.StorageFile)) }

// TestIntegrationFaultNATSRestartMemory is the NATS restart with the image
// and view streams in memory (bus.storage memory): the restart loses them
// and what they held; the stages create them again, the feeder finds their
// generation changed and feeds epoch 1 again, and the trainer trains each
// sample once.
func TestIntegrationFaultNATSRestartMemory(t *testing.T) {
	eachBatch(t, faultNATSRestart(bus.StorageMemory))
}

func faultNATSRestart(storage string) func(t *testing.T) {
	return func(t *testing.T) {
		name := "NATS restart"
		if storage == bus.StorageMemory {
			name = "NATS restart, memory image and view streams"
		}
		fc := newCase(t, name, "", `
dataset: {limit_train: 300, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
		window := bus.Limits{Batch: fc.batch}.TrainPending(50)
		fc.row.Injected = fmt.Sprintf("nats-server shut down for 8 s after the first step of epoch 1, while a %d-message stream limit (the trainer's window) held the feeder mid-epoch; restarted on the same port and store", window)
		c := fc.c
		fc.ingest()
		entries := fc.trainEntries("mnist", 300)
		limit := []string{"--set", fmt.Sprintf("bus.stream_max_msgs=%d", window), "--set", "bus.storage=" + storage}
		dec := c.Start("decode", append([]string{"decode"}, limit...)...)
		aug := c.Start("augment", append([]string{"augment"}, limit...)...)
		train := c.Start("train", append([]string{"train"}, limit...)...)
		feed := c.Start("feed", append([]string{"feed"}, limit...)...)
		train.WaitFor(stepLine(1), 2*time.Minute)
		if per := fc.messages(len(entries)); per < window {
			fc.note("an epoch is %d messages of up to %d samples: the stream limit did not hold the feeder back", per, fc.batch)
		}
		c.RestartNATS(8 * time.Second)
		c.Wait(feed, 4*time.Minute)
		c.Wait(train, 4*time.Minute)
		fc.check(entries, 2, nil, train.Output())
		for _, p := range []*clustertest.Proc{dec, aug, train, feed} {
			if !strings.Contains(p.Output(), `msg="nats reconnected"`) {
				t.Errorf("%s did not log a reconnection", p.Name())
			}
		}
		fc.note("decode, augment, train and feed logged their reconnection")
		if storage == bus.StorageMemory {
			n := 0
			for line := range strings.Lines(feed.Output()) {
				if strings.Contains(line, `msg="epoch fed"`) && strings.Contains(line, " epoch=1 ") {
					n++
				}
			}
			if n < 2 {
				t.Errorf("epoch 1 fed %d times, want it fed again after the memory streams were lost", n)
			}
			fc.note("the memory streams were created again and epoch 1 fed again")
		}
	}
}

// TestIntegrationFaultMinIOOutage stops MinIO for 10 s while the decode
// worker holds the first tasks of epoch 1, with one object of the manifest
// deleted beforehand: decode retries with backoff through the outage, the
// deleted object is dead-lettered with its key, and both epochs complete
// with every other sample trained exactly once.
func TestIntegrationFaultMinIOOutage(t *testing.T) { eachBatch(t, faultMinIOOutage(false)) }

// TestIntegrationFaultFusedMinIOOutage is the MinIO outage with one fused
// worker (decode --augment) instead of decode and augment: the tasks whose
// fetch failed are redelivered as task messages, the missing object is
// dead-lettered alone with its key, and every other sample trains once per
// epoch.
func TestIntegrationFaultFusedMinIOOutage(t *testing.T) { eachBatch(t, faultMinIOOutage(true)) }

func faultMinIOOutage(fused bool) func(*testing.T) {
	name, who := "MinIO outage + missing object", "decode"
	if fused {
		name, who = name+", fused worker", "the one decode --augment worker"
	}
	return func(t *testing.T) {
		fc := newCase(t, name, "MinIO stopped for 10 s while "+who+" held epoch 1's first tasks; one object of the manifest deleted", `
dataset: {limit_train: 200, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
		fc.ingest()
		entries := fc.trainEntries("mnist", 200)
		const missing = 7
		fc.removeObject(entries[missing].Key)
		train := fc.minIOOutage(len(entries), fused)
		fc.check(entries, 2, []uint64{missing}, train.Output())
		fc.expectDeadLetter(entries[missing].Key, "not found")
	}
}

// minIOOutage starts decode and augment (fused: one decode --augment
// worker instead) and train, feeds n samples and stops MinIO for 10 s
// while decode holds epoch 1's first tasks, then waits for the feeder and
// the trainer to end; it returns the trainer.
func (fc *faultCase) minIOOutage(n int, fused bool) *clustertest.Proc {
	c := fc.c
	js := fc.js()
	args := []string{"decode"}
	if fused {
		args = append(args, "--augment")
	}
	dec := c.Start("decode", args...)
	procs := []*clustertest.Proc{dec}
	if !fused {
		procs = append(procs, c.Start("augment", "augment"))
	}
	train := c.Start("train", "train")
	// Every stage past its start-up store check: one that starts while
	// the store is down exits (a supervisor's restart is not this case).
	for _, p := range append(procs, train) {
		p.WaitFor(running, time.Minute)
	}
	// Freeze decode so that the outage starts before it fetched anything.
	dec.Signal(syscall.SIGSTOP)
	feed := c.Start("feed", "feed")
	waitStreamMsgs(fc.t, js, messages.TopicDecodeTasks, fc.messages(n), time.Minute)
	c.MinIO().Stop()
	down := time.Now()
	dec.Signal(syscall.SIGCONT)
	time.Sleep(10 * time.Second) // the fault is the outage itself
	c.MinIO().Start()
	fc.note("MinIO down %.1f s", time.Since(down).Seconds())
	c.Wait(feed, 4*time.Minute)
	c.Wait(train, 4*time.Minute)
	return train
}

// TestIntegrationFaultShardedMinIOOutage is the MinIO outage on a sharded
// data set, fed in runs (feeder.shard_run 16) that decode fetches with one
// ranged GET each: the runs' GETs that fail during the outage are
// redelivered, and one shard truncated in the middle before the run
// dead-letters exactly its members past the cut (their runs fall back to
// one GET per member), while every other sample trains once per epoch.
func TestIntegrationFaultShardedMinIOOutage(t *testing.T) { eachBatch(t, faultShardedMinIOOutage) }

func faultShardedMinIOOutage(t *testing.T) {
	fc := newCase(t, "MinIO outage, sharded data set", "MinIO stopped for 10 s while decode held epoch 1's first tasks; a 64 KiB shard of ~60 members cut in its middle", `
dataset: {limit_train: 200, limit_test: 10, shard_bytes: 65536}
feeder: {shard_run: 16}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 200)
	mid := entries[len(entries)/2]
	cut := mid.Offset + mid.Size/2
	storetest.Truncate(t, c.Store(), mid.Shard, cut)
	var dead []uint64
	for i, e := range entries {
		if e.Shard == mid.Shard && e.Offset+e.Size > cut {
			dead = append(dead, uint64(i))
		}
	}
	fc.note("shard %s cut to %d bytes: %d members past the cut", mid.Shard, cut, len(dead))
	train := fc.minIOOutage(len(entries), false)
	fc.check(entries, 2, dead, train.Output())
	fc.expectDeadLetter(mid.Shard, "past the end of its shard")
}

// TestIntegrationFaultSlowWorker freezes the decode worker with SIGSTOP
// while it holds tasks of epoch 1 and starts a second one. A worker pulls
// only as many task messages as it has free slots (decode.workers), so the
// frozen one holds at most that many: every other task goes to the live
// worker, the frozen one's come back once, after one ack_wait, and the
// epoch completes while it is still stopped. Counted, not timed: the decode
// consumer's redeliveries up to then are at most the frozen worker's slots
// (with push consumers, the group kept handing it its share of every
// redelivery, 9-10 ack_waits). Then it resumes and epoch 2 completes too.
func TestIntegrationFaultSlowWorker(t *testing.T) { eachBatch(t, faultSlowWorker) }

func faultSlowWorker(t *testing.T) {
	fc := newCase(t, "slow worker", "SIGSTOP to the decode worker while it holds epoch 1's tasks, a second one started; SIGCONT after the epoch (ack_wait 3 s, max_deliver 3)", `
dataset: {limit_train: 200, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 200)
	js := fc.js()
	slow := c.Start("decode-slow", "decode")
	c.Start("augment", "augment")
	train := c.Start("train", "train")
	feed := c.Start("feed", "feed")
	waitInFlight(t, js, messages.TopicDecodeTasks, "decode", 2*time.Minute)
	slow.Signal(syscall.SIGSTOP)
	start := time.Now()
	c.Start("decode", "decode")
	// Without the fix in bus/topology.go (no server-side MaxDeliver), the
	// messages the frozen worker held were never delivered again once the
	// server had counted max_deliver deliveries to it.
	const bound = 90 * time.Second
	for !epochTrained(1).MatchString(train.Output()) {
		if time.Since(start) > bound {
			t.Fatalf("epoch 1 not trained %v after one of two workers stopped; decode consumer: %s",
				bound, consumerState(t, js, messages.TopicDecodeTasks, "decode"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	slots := decode.DefaultConfig().Workers
	re := redeliveries(t, js, messages.TopicDecodeTasks, "decode")
	if re > slots {
		t.Errorf("epoch 1 took %d redeliveries of task messages, want at most %d (decode.workers: what the frozen worker can hold); decode consumer: %s",
			re, slots, consumerState(t, js, messages.TopicDecodeTasks, "decode"))
	}
	fc.note("epoch 1 completed %.1f s (%.1f ack_waits) after the stop; %d task messages redelivered (at most decode.workers = %d)",
		took.Seconds(), took.Seconds()/3, re, slots)
	slow.Signal(syscall.SIGCONT)
	c.Wait(feed, 4*time.Minute)
	c.Wait(train, 4*time.Minute)
	if m := epochSeconds(2).FindStringSubmatch(train.Output()); m != nil {
		fc.note("epoch 2, both workers running: %s s", m[1])
	}
	fc.check(entries, 2, nil, train.Output())
}

// redeliveries is how many deliveries of the consumer were not the first
// of their message: consumer sequence (every delivery) minus stream
// sequence (every message, delivered in order once each before any
// redelivery), for a consumer created before its stream's first message.
func redeliveries(t *testing.T, js jetstream.JetStream, stream, consumer string) int {
	t.Helper()
	c, err := js.Consumer(t.Context(), stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	d := c.CachedInfo().Delivered
	return int(d.Consumer) - int(d.Stream)
}

// epochSeconds captures the trainer's duration of epoch e.
func epochSeconds(e int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`msg="epoch trained" (?:\S+ )*?epoch=%d .*? seconds=(\d+\.\d)`, e))
}

// TestIntegrationFaultPoisonMessage gives the decode worker S3 credentials
// (MinIO STS AssumeRole with a session policy) that deny GetObject on one
// object of the manifest: every delivery of its task fails with
// AccessDenied, which is not permanent, so it is retried until its
// delivery count reaches max_deliver and then dead-lettered with its key;
// the epochs complete without it.
func TestIntegrationFaultPoisonMessage(t *testing.T) { eachBatch(t, faultPoisonMessage) }

func faultPoisonMessage(t *testing.T) {
	fc := newCase(t, "poison message", "decode credentials deny GetObject on one object: AccessDenied on every delivery", `
dataset: {limit_train: 200, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 200)
	const poison = 11
	env := fc.denyGetCredentials(entries[poison].Key)
	c.StartEnv("decode", env, "decode")
	c.Start("augment", "augment")
	train := c.Start("train", "train")
	feed := c.Start("feed", "feed")
	c.Wait(feed, 4*time.Minute)
	c.Wait(train, 4*time.Minute)
	fc.check(entries, 2, []uint64{poison}, train.Output())
	dls := fc.expectDeadLetter(entries[poison].Key, "gave up after 3 deliveries")
	fc.note("%d dead letters of it (one per epoch), each after %s deliveries", len(dls), strings.Join(dls, ", "))
}

// TestIntegrationFaultTrainerKill kills the trainer (and the feeder) with
// SIGKILL, first in the middle of an epoch after a checkpoint, then
// repeatedly right after an epoch is trained, while its checkpoint is being
// written, and restarts them with `train --resume` and `feed --start-epoch`
// (the resumed epoch + 1). Each restart must resume from the last
// checkpoint, every epoch must be reported with its exact set, and every
// checkpoint object in the bucket must load completely.
func TestIntegrationFaultTrainerKill(t *testing.T) { eachBatch(t, faultTrainerKill) }

func faultTrainerKill(t *testing.T) {
	fc := newCase(t, "kill -9 trainer", "SIGKILL to train and feed mid-epoch 2, then 0, 15 and 30 ms after an epoch is trained (during its checkpoint save); restarted with --resume each time", `
dataset: {limit_train: 200, limit_test: 10}
train: {epochs: 5, batch_size: 25, knn_every: 0, checkpoint_every: 1}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 200)
	const stepsPerEpoch = 8
	c.Start("decode", "decode")
	c.Start("augment", "augment")
	st := c.Store()
	ctx := context.Background()

	var outs []string
	savedBefore := 0 // the last epoch a killed trainer logged as checkpointed
	var during []string
	// A restarted feeder feeds its first epoch once, and again only if the
	// new trainer announced its start after that feed began; it fed it
	// once more per earlier restart when it took earlier feeders' feeds
	// for its own.
	feedsAtMostTwice := func(feed *clustertest.Proc, start int) {
		if n := len(clustertest.LogLine("epoch fed", "epoch", start).FindAllString(feed.Output(), -1)); n > 2 {
			t.Errorf("%s fed epoch %d %d times, want at most 2", feed.Name(), start, n)
		}
	}
	for round := 0; ; round++ {
		train := c.Start(fmt.Sprintf("train-%d", round), "train", "--resume")
		start := resumedAt(t, train, stepsPerEpoch)
		if start-1 < savedBefore {
			t.Errorf("round %d resumed after epoch %d; epoch %d was checkpointed before the kill", round, start-1, savedBefore)
		}
		feed := c.Start(fmt.Sprintf("feed-%d", round), "feed", "--start-epoch", strconv.Itoa(start))
		switch {
		case round == 0: // mid-epoch 2, after the first checkpoint: step 10 is its second (the trainer logs every 10th)
			train.WaitFor(stepLine(stepsPerEpoch+2), 3*time.Minute)
		case round <= 3: // 0, 15, 30 ms after an epoch is trained: its checkpoint is being saved
			trained := epochTrained(start)
			for deadline := time.Now().Add(3 * time.Minute); !trained.MatchString(train.Output()); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: epoch %d not trained\n%s", train.Name(), start, clustertest.Tail(train.Output(), 3000))
				}
			}
			time.Sleep(time.Duration(round-1) * 15 * time.Millisecond)
		default:
			c.Wait(feed, 4*time.Minute)
			c.Wait(train, 4*time.Minute)
			feedsAtMostTwice(feed, start)
			outs = append(outs, train.Output())
			fc.note("%d kills; the epoch-N object existed after %d of the 3 kills during a save (%s)", round, countTrue(during), strings.Join(during, ", "))
			fc.check(entries, 5, nil, outs...)
			fc.checkpointsLoad(st)
			return
		}
		train.Kill()
		feed.Kill()
		feedsAtMostTwice(feed, start)
		outs = append(outs, train.Output())
		if round == 0 && epochTrained(2).MatchString(train.Output()) {
			t.Fatal("the kill meant for the middle of epoch 2 came after it")
		}
		if m := savedLine.FindAllStringSubmatch(train.Output(), -1); len(m) > 0 {
			savedBefore, _ = strconv.Atoi(m[len(m)-1][1])
		}
		if round > 0 {
			ok, err := st.Exists(ctx, fmt.Sprintf("runs/%s/checkpoints/epoch-%d.safetensors", clustertest.RunID, start))
			if err != nil {
				t.Fatal(err)
			}
			during = append(during, fmt.Sprintf("epoch %d: %v", start, ok))
		}
	}
}

// TestIntegrationFaultTrainerAloneKill kills only the trainer with
// SIGKILL in the middle of epoch 2, after the checkpoint of epoch 1 and
// two acknowledged steps of epoch 2, and restarts it with `train --resume`
// (what a restart policy does) while the feeder keeps running. The resumed
// trainer announces its start, the feeder feeds epoch 2 again (the views
// the killed trainer stepped after its checkpoint are gone) and the run
// completes with every epoch's exact set. Before the re-feed the feeder
// waited for an EpochTrained of epoch 2 that never came.
func TestIntegrationFaultTrainerAloneKill(t *testing.T) { eachBatch(t, faultTrainerAloneKill) }

func faultTrainerAloneKill(t *testing.T) {
	fc := newCase(t, "kill -9 trainer alone", "SIGKILL to train only, mid-epoch 2 after its first checkpoint; restarted with --resume, the feeder left running", `
dataset: {limit_train: 200, limit_test: 10}
train: {epochs: 3, batch_size: 25, knn_every: 0, checkpoint_every: 1}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 200)
	const stepsPerEpoch = 8
	c.Start("decode", "decode")
	c.Start("augment", "augment")
	train := c.Start("train", "train", "--resume")
	feed := c.Start("feed", "feed")
	train.WaitFor(stepLine(stepsPerEpoch+2), 3*time.Minute) // the second step of epoch 2
	train.Kill()
	killed := train.Output()
	if epochTrained(2).MatchString(killed) {
		t.Fatal("the kill meant for the middle of epoch 2 came after it")
	}
	again := c.Start("train-2", "train", "--resume")
	if start := resumedAt(t, again, stepsPerEpoch); start != 2 {
		t.Fatalf("resumed at epoch %d, want 2", start)
	}
	c.Wait(feed, 4*time.Minute)
	c.Wait(again, 4*time.Minute)
	fc.check(entries, 3, nil, killed, again.Output())
	feeds := map[uint32]int{}
	for _, ev := range fc.events(context.Background()) {
		if ev.Kind == messages.EventEpochStart {
			feeds[ev.Epoch]++
		}
	}
	if feeds[1] != 1 || feeds[2] != 2 || feeds[3] != 1 {
		t.Errorf("epochs fed %v times; want epoch 2 twice, the others once", feeds)
	}
	fc.note("epoch 2 fed again after the restart, epochs 1 and 3 once")
}

var (
	resumedLine = regexp.MustCompile(`msg=resumed (?:\S+ )*?epoch=(\d+) step=(\d+)`)
	savedLine   = regexp.MustCompile(`msg="checkpoint saved" (?:\S+ )*?epoch=(\d+) `)
	freshLine   = regexp.MustCompile(`no checkpoint yet, starting from scratch`)
)

// resumedAt waits for a `train --resume` process to say where it starts and
// returns the first epoch it trains; the checkpoint's step must be that of
// a whole number of epochs.
func resumedAt(t *testing.T, p *clustertest.Proc, stepsPerEpoch int) int {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		out := p.Output()
		if m := resumedLine.FindStringSubmatch(out); m != nil {
			e, _ := strconv.Atoi(m[1])
			s, _ := strconv.Atoi(m[2])
			if s != e*stepsPerEpoch {
				t.Errorf("%s resumed at epoch %d, step %d; want step %d", p.Name(), e, s, e*stepsPerEpoch)
			}
			return e + 1
		}
		if freshLine.MatchString(out) {
			return 1
		}
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("%s: no resume line\n%s", p.Name(), clustertest.Tail(out, 3000))
		}
	}
}

func countTrue(s []string) int {
	n := 0
	for _, x := range s {
		if strings.HasSuffix(x, "true") {
			n++
		}
	}
	return n
}

// TestIntegrationFaultBadInput publishes, while epoch 1 runs, a malformed
// message on the decode subject as large as max_payload allows (1,048,380
// bytes with max_payload 1 MiB: no room left for the dead-letter headers).
// It must be dead-lettered once, at its first delivery, with its payload
// cut to fit and its size recorded, and both epochs complete with every
// sample trained exactly once. Before the fix it was nacked and redelivered
// without end.
func TestIntegrationFaultBadInput(t *testing.T) { eachBatch(t, faultBadInput) }

func faultBadInput(t *testing.T) {
	fc := newCase(t, "bad input", "a malformed message of max_payload - 196 bytes (1,048,380 with the default 1 MiB) published on the decode subject after the first step of epoch 1", `
dataset: {limit_train: 200, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 200)
	st := fc.startStages()
	train, feed := st.train, st.feed

	train.WaitFor(stepLine(1), 2*time.Minute)
	js := fc.js()
	size := int(fc.maxPayload()) - 196
	bad := append([]byte("SF\x01\x01not a decode task"), make([]byte, size)...)[:size]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, messages.TopicDecodeTasks, bad); err != nil {
		t.Fatalf("publish %d bytes: %v", size, err)
	}
	c.Wait(feed, 4*time.Minute)
	c.Wait(train, 4*time.Minute)
	fc.check(entries, 2, nil, train.Output())

	dls := fc.deadLetters(ctx)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want the bad message once", len(dls))
	}
	h := dls[0].Headers()
	kept, wire := len(dls[0].Data()), len(dls[0].Data())+headerBytes(h)
	if h.Get(messages.MetaSourceTopic) != messages.TopicDecodeTasks || h.Get(messages.MetaDeliveries) != "1" ||
		h.Get(messages.MetaPayloadSize) != strconv.Itoa(size) || kept >= size || int64(wire) > fc.maxPayload() {
		t.Errorf("dead letter from %s at delivery %s: %d of %s bytes kept, %d on the wire (max_payload %d)",
			h.Get(messages.MetaSourceTopic), h.Get(messages.MetaDeliveries), kept, h.Get(messages.MetaPayloadSize), wire, fc.maxPayload())
	}
	fc.note("dead-lettered once, at delivery %s, as %q: %d of its %d bytes kept", h.Get(messages.MetaDeliveries),
		h.Get(messages.MetaReason), kept, size)
}
