// Package decode is the pipeline stage between the feeder and augment: for
// each messages.DecodeTask it fetches the object from the dataset bucket
// (or, for a shard member, its bytes in the shard, with a ranged GET),
// decodes it with imgdecode under the configured limits and returns a
// messages.Image carrying the task's ids, label and split.
//
// It classifies failures for the bus: a fetch error is transient (a plain
// error, retried) unless Deps.IsNotFound says the object is missing or
// Deps.IsTooLarge that it is over Config.MaxObjectBytes (the Getter refuses
// such an object from its size, so no more than the limit is ever read) or
// Deps.IsOutOfRange that a member runs past its shard's end; a missing,
// oversized, out-of-range or undecodable object is permanent
// (messages.ErrPermanent) and names the key and the reason. With
// Config.Cache on, decoded images are kept through Deps.Cache so that
// later epochs skip the fetch and the decode: one entry per loose object,
// written as decoded; one decoded shard per data shard, written whole by
// BuildShards (shardcache.go) and read like the data shards, one ranged
// GET per run; whatever the cache lacks or holds damaged is decoded from
// the original.
//
// Config is pipeline.yaml's decode section (the config package embeds it as
// is); Deps holds what is not a setting: the object store, injected as a
// Getter, the cache, the not-found test and the policy on which keys a task
// may name (Allow). The bus mounts HandleTask on the tasks UnmarshalTasks
// plans from a message: the shard members of a batch that lie close
// together in one shard are fetched with one ranged GET (Plan), each still
// failing or succeeding on its own.
//
// It imports only messages, imgdecode and config/field; it must not import
// bus, store, config or any other stage.
package decode
