package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/supflow/supflow/messages"
)

func TestDeadLettersStream(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	runRouter(t, b, quick, Handle("stage", "in", "out", func(p []byte) (string, error) { return string(p), nil }, bytesOf,
		func(context.Context, string) (string, error) {
			return "", messages.Permanent(errors.New("corrupt image"))
		}))
	sendAll(t, b, "in", "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dls, err := b.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]DeadLetter{}
	for dl := range dls {
		got[string(dl.Payload)] = dl
		if len(got) == 2 {
			break
		}
	}
	for _, p := range []string{"a", "b"} {
		dl, ok := got[p]
		if !ok || dl.SourceTopic != "in" || dl.Handler != "stage" || dl.Reason == "" {
			t.Errorf("dead letter %q = %+v", p, dl)
		}
	}
}
