package augment_test

import (
	"context"
	"fmt"
	"log"

	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/transform"
)

func ExampleStage_Handle() {
	s, err := augment.New(augment.Config{Seed: 7, Config: transform.Config{Size: 24}})
	if err != nil {
		log.Fatal(err)
	}
	img := messages.Image{SampleID: 1, Height: 32, Width: 48, Channels: 3, Pixels: make([]byte, 32*48*3)}
	vg, err := s.Handle(context.Background(), img)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vg.NViews, vg.Height, vg.Width, vg.Channels, len(vg.Pixels))
	// Output: 2 24 24 3 3456
}
