package messages

import (
	"context"
	"errors"
)

// OfRun wraps a stage's handler so that messages of other runs are skipped
// (ErrSkip: the bus acknowledges them and publishes nothing) instead of
// processed: the streams of a bus are shared by every run on it. run reads
// a message's run id.
func OfRun[In, Out any](runID string, run func(In) string, fn func(context.Context, In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		if got := run(in); got != runID {
			var zero Out
			return zero, Skip(errors.New("message of run " + got))
		}
		return fn(ctx, in)
	}
}
