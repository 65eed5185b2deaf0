// Package bus owns supflow's transport: the NATS JetStream streams and
// durable consumers of every pipeline edge (Provision), a publisher that
// waits while a stream is full (back-pressure) and refuses payloads above the
// server's max_payload, the control-event stream (Events), and a Router that
// mounts typed stage handlers (Handle, Sink) on watermill with at-least-once
// delivery: an input is acknowledged only after its output was published, a
// permanent failure goes to the dead-letter stream with its reason, and a
// transient one is redelivered with backoff until the consumer's MaxDeliver.
// StartEmbedded runs nats-server in-process for single-binary runs and tests.
//
// bus imports messages, watermill, nats.go and nats-server; stages must not
// import bus: cmd/supflow wires their plain functions onto it. Stream,
// consumer and header settings are documented in docs/messages.md.
package bus
