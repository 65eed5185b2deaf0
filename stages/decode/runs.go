package decode

import (
	"context"
	"slices"
	"sync"

	"github.com/supflow/supflow/messages"
)

// Limits of the runs Plan merges.
const (
	// maxRunGap is the most bytes between two members that one GET still
	// spans, read and dropped: neighbours in a tar shard are at most 1,023
	// bytes apart (a header and padding), and 64 KiB more costs less to
	// move than a request does (0.3-0.4 ms of CPU per GET in
	// docs/benchmarks.md, the time to copy megabytes).
	maxRunGap = 64 << 10
	// maxRunBytes bounds one merged GET and so what a message's runs hold
	// in memory while their members decode: a message of 64 ImageNet-size
	// JPEGs (about 110 KB each) is one GET. Config.MaxObjectBytes, when
	// lower, bounds it too: no GET of decode reads more than that.
	maxRunBytes = 16 << 20
)

// Task is a decode task of a batch, as Plan returned it: the task, and the
// run of shard members it is fetched with, if any.
type Task struct {
	messages.DecodeTask
	run *run // nil: fetched alone
}

// run is members of one shard that one ranged GET fetches, on the first
// of them that is not in the cache.
type run struct {
	key     string
	off, n  int64
	members []member // in offset order
	mu      sync.Mutex
	data    []byte // nil until fetched, and again once every member is done
	refused bool   // the GET failed permanently: each member is fetched alone
	done    int    // members decoded or failed: once all are, data goes back to reuse
	// px is where the members' records are in the shard's decoded shard
	// (shardcache.go), by data offset; nil until a member looked.
	px map[uint64]pxAt
}

// member is a shard member's place in its shard.
type member struct {
	off uint64
	n   uint32
}

// MarshalTask encodes t's decode task alone, as bus.HandleBatch
// dead-letters a sample.
func MarshalTask(t Task) ([]byte, error) { return messages.MarshalDecodeTask(t.DecodeTask) }

// UnmarshalTasks decodes a DecodeTask message and plans its fetches
// (Plan): the decode func bus.HandleBatch takes, with HandleTask.
func (s *Stage) UnmarshalTasks(p []byte) ([]Task, error) {
	tasks, err := messages.UnmarshalDecodeTasks(p)
	if err != nil {
		return nil, err
	}
	return s.Plan(tasks), nil
}

// Plan groups the shard members among tasks into runs, one ranged GET each:
// by shard, in offset order, a member joins the run before it when the gap
// between them is at most maxRunGap bytes and the run stays within
// maxRunBytes and Config.MaxObjectBytes. Loose objects, members a single
// GET would refuse (over Config.MaxObjectBytes, a key Deps.Allow refuses)
// and members alone in their run are fetched as Handle fetches them. Plan
// does no I/O: a run is fetched by HandleTask, on first use.
func (s *Stage) Plan(tasks []messages.DecodeTask) []Task {
	out := make([]Task, len(tasks))
	var members []int
	for i, t := range tasks {
		out[i].DecodeTask = t
		if t.Length > 0 && t.Key != "" && int64(t.Length) <= s.cfg.MaxObjectBytes && t.Offset <= 1<<62 &&
			(s.allow == nil || s.allow(t.Key) == nil) {
			members = append(members, i)
		}
	}
	slices.SortFunc(members, func(a, b int) int {
		return messages.ComparePlace(tasks[a], tasks[b])
	})
	limit := min(maxRunBytes, s.cfg.MaxObjectBytes)
	for len(members) > 0 {
		first := tasks[members[0]]
		r := &run{key: first.Key, off: int64(first.Offset), n: int64(first.Length)}
		k := 1
		for ; k < len(members); k++ {
			t := tasks[members[k]]
			end := max(r.off+r.n, int64(t.Offset)+int64(t.Length))
			if t.Key != r.key || int64(t.Offset)-(r.off+r.n) > maxRunGap || end-r.off > limit {
				break
			}
			r.n = end - r.off
		}
		if k > 1 {
			for _, i := range members[:k] {
				out[i].run = r
				r.members = append(r.members, member{tasks[i].Offset, tasks[i].Length})
			}
		}
		members = members[k:]
	}
	return out
}

// HandleTask is Handle for a task of a planned batch: a member of a run
// takes its bytes from the run's one GET. A transient failure of that GET
// fails the task as Handle's would (the bus redelivers the batch); a
// permanent one (the shard missing, or shorter than the run: a truncated
// shard, a member past its end) sends each member of the run to a GET of
// its own, so that exactly the members at fault fail, each with its own
// reason, and the others decode.
func (s *Stage) HandleTask(ctx context.Context, t Task) (messages.Image, error) {
	if t.run != nil {
		defer s.done(t.run)
	}
	return s.handle(ctx, t.DecodeTask, t.run)
}

// member returns task's bytes from r, fetching r first if no member did;
// ok is false when r's GET failed for good and task must be fetched alone.
func (s *Stage) member(ctx context.Context, r *run, task messages.DecodeTask) (data []byte, ok bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.data == nil && !r.refused {
		data, err := s.getRun(ctx, r)
		switch {
		case err != nil && s.permanent(err), err == nil && int64(len(data)) != r.n:
			r.refused = true
		case err != nil:
			return nil, false, err
		default:
			r.data = data
		}
	}
	if r.refused {
		return nil, false, nil
	}
	from := int64(task.Offset) - r.off
	return r.data[from : from+int64(task.Length) : from+int64(task.Length)], true, nil
}

// rangeAppender is a Getter that reads a range into a caller's buffer
// (store.Client.AppendRange): a run's GET then reuses the buffer of a run
// whose members are done, instead of faulting in fresh memory. A Getter
// that wraps a store.Client by embedding it gets this method too, and must
// wrap it as it wraps GetRange.
type rangeAppender interface {
	AppendRange(ctx context.Context, dst []byte, key string, off, n, max int64) ([]byte, error)
}

// getRun is r's one GET, into a reused buffer where the Getter can.
func (s *Stage) getRun(ctx context.Context, r *run) ([]byte, error) {
	if a, ok := s.objects.(rangeAppender); ok {
		return a.AppendRange(ctx, s.runBufs.Get(), r.key, r.off, r.n, r.n)
	}
	return s.objects.GetRange(ctx, r.key, r.off, r.n, r.n)
}

// done counts one member of r decoded (or failed): its image no longer
// needs r's bytes, since a decoded image never aliases its input. The last
// member gives r's bytes back for the next run's GET.
func (s *Stage) done(r *run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done++; r.done == len(r.members) && r.data != nil {
		s.runBufs.Put(r.data)
		r.data = nil
	}
}
