package messages

import "context"

// Then chains two stage handlers into one, for a process that runs both
// stages with no edge between them: g gets f's output. An error of either
// is returned as it is, so its ErrPermanent or ErrSkip marking still tells
// the bus what to do with the input.
func Then[In, Mid, Out any](f func(context.Context, In) (Mid, error), g func(context.Context, Mid) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		mid, err := f(ctx, in)
		if err != nil {
			var zero Out
			return zero, err
		}
		return g(ctx, mid)
	}
}
