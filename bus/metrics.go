package bus

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per handler; labels hold only handler names, outcomes and
// dead-letter reason classes, each a small fixed set.
type metrics struct {
	in, out, deadLettered, skipped, nacked, terminated *prometheus.CounterVec
	seconds                                            *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"handler_name"})
	}
	m := &metrics{
		in:  counter("supflow_bus_messages_in_total", "Messages delivered to a handler (redeliveries included)."),
		out: counter("supflow_bus_messages_out_total", "Messages a handler published downstream."),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supflow_bus_messages_dead_lettered_total",
			Help: "Messages a handler sent to the dead-letter stream, by reason class (see docs/messages.md).",
		}, []string{"handler_name", "reason"}),
		skipped: counter("supflow_bus_messages_skipped_total", "Messages a handler acknowledged without output (messages.ErrSkip)."),
		nacked:  counter("supflow_bus_messages_nacked_total", "Deliveries that failed transiently and will be redelivered."),
		terminated: counter("supflow_bus_messages_terminated_total",
			"Messages dropped because they could not be dead-lettered (after max_deliver attempts, or at once when the dead letter can never be published)."),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "supflow_bus_handler_seconds",
			Help:    "Time spent handling one delivery, by outcome (ack or nak).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"handler_name", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.in = register(reg, m.in, &err)
	m.out = register(reg, m.out, &err)
	m.deadLettered = register(reg, m.deadLettered, &err)
	m.skipped = register(reg, m.skipped, &err)
	m.nacked = register(reg, m.nacked, &err)
	m.terminated = register(reg, m.terminated, &err)
	m.seconds = register(reg, m.seconds, &err)
	return m, err
}

// register returns the collector already registered under the same name, so
// that several routers in one process share their series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}
