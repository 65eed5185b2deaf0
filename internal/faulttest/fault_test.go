package faulttest

import (
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/messages"
)

// TestIntegrationFaultKillWorkers kills the only decode worker and the only
// augment worker with SIGKILL while each holds unacknowledged messages,
// then starts new ones: the messages come back after ack_wait and every
// sample of every epoch is trained exactly once.
func TestIntegrationFaultKillWorkers(t *testing.T) {
	fc := newCase(t, "kill -9 workers", "SIGKILL to the decode and the augment worker while each holds messages in epoch 1; new ones started", `
dataset: {limit_train: 300, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 300)
	js := fc.js()
	dec := c.Start("decode", "decode")
	aug := c.Start("augment", "augment")
	train := c.Start("train", "train")
	feed := c.Start("feed", "feed")

	n := waitInFlight(t, js, messages.TopicDecodeTasks, "decode", 2*time.Minute)
	dec.Kill()
	c.Start("decode-2", "decode")
	m := waitInFlight(t, js, messages.TopicImages, "augment", time.Minute)
	aug.Kill()
	c.Start("augment-2", "augment")
	fc.note("in flight when killed: %d decode tasks, %d images", n, m)
	c.Wait(feed, 4*time.Minute)
	c.Wait(train, 4*time.Minute)
	fc.check(entries, 2, nil, train.Output())
}

// TestIntegrationFaultNATSRestart restarts the NATS server (JetStream file
// storage, same port) in the middle of the first epoch: every stage
// reconnects and both epochs complete with the exact set.
func TestIntegrationFaultNATSRestart(t *testing.T) {
	fc := newCase(t, "NATS restart", "nats-server shut down for 2 s after the first step of epoch 1, restarted on the same port and store", `
dataset: {limit_train: 300, limit_test: 10}
train: {epochs: 2, batch_size: 50, knn_every: 0}
`)
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", 300)
	dec := c.Start("decode", "decode")
	aug := c.Start("augment", "augment")
	train := c.Start("train", "train")
	feed := c.Start("feed", "feed")
	train.WaitFor(stepLine(1), 2*time.Minute)
	c.RestartNATS(2 * time.Second)
	c.Wait(feed, 4*time.Minute)
	c.Wait(train, 4*time.Minute)
	fc.check(entries, 2, nil, train.Output())
	for _, p := range []*clustertest.Proc{dec, aug, train, feed} {
		if !strings.Contains(p.Output(), `msg="nats reconnected"`) {
			t.Errorf("%s did not log a reconnection", p.Name())
		}
	}
	fc.note("decode, augment, train and feed logged their reconnection")
}
