package decode_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/decode"
)

type oneObject []byte

func (o oneObject) GetMax(context.Context, string, int64) ([]byte, error) { return o, nil }

func (o oneObject) GetRange(_ context.Context, _ string, off, n, _ int64) ([]byte, error) {
	return o[off : off+n], nil
}

func ExampleStage_Handle() {
	var buf bytes.Buffer
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, 640, 480)))

	s, err := decode.New(decode.Config{Config: imgdecode.Config{ResizeShorter: 32}}, decode.Deps{Objects: oneObject(buf.Bytes())})
	if err != nil {
		panic(err)
	}
	img, err := s.Handle(context.Background(), messages.DecodeTask{Key: "train/0001.png", Label: 3, Split: "train"})
	fmt.Println(img.Width, img.Height, img.Channels, img.Label, err)
	// Output: 42 32 3 3 <nil>
}
