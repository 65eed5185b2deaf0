package feeder_test

import (
	"context"
	"fmt"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/feeder"
)

// The wiring plugs the bus publisher in as publish and event.
func Example() {
	const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	entries := []dataset.Entry{
		{Key: "train/cat/0.png", Label: 0, Class: "cat", Split: "train", Size: 1, SHA256: sum},
		{Key: "train/dog/1.png", Label: 1, Class: "dog", Split: "train", Size: 1, SHA256: sum},
	}
	f, err := feeder.New(feeder.Config{RunID: "demo", Seed: 1, Epochs: 1}, dataset.List(entries))
	if err != nil {
		fmt.Println(err)
		return
	}
	publish := func(_ context.Context, ts []messages.DecodeTask) error {
		for _, t := range ts {
			fmt.Println("task", t.Epoch, t.SampleID)
		}
		return nil
	}
	event := func(_ context.Context, e messages.Event) error {
		fmt.Println("event", e.Kind, e.Epoch, e.Count)
		return nil
	}
	if err := f.Run(context.Background(), publish, event, nil); err != nil {
		fmt.Println(err)
	}
	// Output:
	// event epoch_start 0 2
	// task 0 0
	// task 0 1
	// event epoch_end 0 2
}
