package messages_test

import (
	"fmt"

	"github.com/supflow/supflow/messages"
)

func ExampleMarshalViewGroup() {
	b, err := messages.MarshalViewGroup(messages.ViewGroup{
		RunID: "run-1", Epoch: 0, SampleID: 7, Label: 3, Split: "train",
		NViews: 2, Height: 32, Width: 32, Channels: 3, Pixels: make([]byte, 2*32*32*3),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := messages.UnmarshalViewGroup(b)
	fmt.Println(len(b), v.SampleID, v.NViews, len(v.Pixels), err)
	// Output: 6192 7 2 6144 <nil>
}
