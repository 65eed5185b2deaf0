package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// metaDelivered carries the JetStream delivery count into watermill
// metadata. Keys starting with '_' are internal: never republished.
const metaDelivered = "_supflow_delivered"

// metaReply carries the JetStream reply subject, where a handler may send
// an acknowledgement of its own (+TERM).
const metaReply = "_supflow_reply"

// toMessage turns a JetStream message into a watermill message. It never
// fails (a message that cannot be turned into one would stay
// unacknowledged until AckWait, forever), and it records the delivery count.
func toMessage(m jetstream.Msg) *message.Message {
	md := message.Metadata{}
	h := m.Headers()
	for k, vs := range h {
		if strings.HasPrefix(k, "Nats-") || len(vs) == 0 {
			continue
		}
		md[k] = vs[0]
	}
	id := h.Get(nats.MsgIdHdr)
	if m.Reply() != "" {
		md[metaReply] = m.Reply()
	}
	if meta, err := m.Metadata(); err == nil {
		md[metaDelivered] = strconv.FormatUint(meta.NumDelivered, 10)
		if id == "" {
			id = fmt.Sprintf("%s-%d", meta.Stream, meta.Sequence.Stream)
		}
	}
	if id == "" {
		id = watermill.NewUUID()
	}
	msg := message.NewMessage(id, m.Data())
	msg.Metadata = md
	return msg
}

func deliveries(msg *message.Message) uint64 {
	n, _ := strconv.ParseUint(msg.Metadata.Get(metaDelivered), 10, 64)
	return n
}

// derivedID names the message a handler produces from input id: the same on
// every redelivery, so the output stream's duplicate window drops repeats.
func derivedID(id, salt string) string {
	sum := sha256.Sum256([]byte(id + "\x00" + salt))
	return hex.EncodeToString(sum[:16])
}

// backoff is the redelivery delay after a failed delivery: base doubled per
// earlier delivery, capped.
type backoff struct{ base, max time.Duration }

func (b backoff) WaitTime(delivered uint64) time.Duration {
	d := b.base
	for i := uint64(1); i < delivered && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}
