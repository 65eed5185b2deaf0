package main

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"strings"
	"testing"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/store"
)

// TestDecodeOversizedObjectIsPermanent is the regression test of an object
// over decode.max_object_bytes treated as a transient failure: the store
// refused it (store.ErrTooLarge), decode took that for an outage, and the
// task was retried until max_deliver. Through the decode stage as cmd
// builds it, on an S3 endpoint: an object over the decode limit, whether the
// store's own limit is the same (the defaults: 64 MiB both) or larger, is
// refused at the first delivery as permanent, and one at the limit decodes.
func TestDecodeOversizedObjectIsPermanent(t *testing.T) {
	emb, err := store.StartEmbedded(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	sc := emb.Config("decode")
	sc.MaxObjectSize = 4096
	cl, err := store.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	png := tinyPNG(t)
	pad := func(n int) []byte { return append(append([]byte(nil), png...), make([]byte, n-len(png))...) }
	for key, b := range map[string][]byte{"ds/at-limit.png": pad(2048), "ds/over-decode.png": pad(3000), "ds/over-store.png": pad(5000)} {
		if err := cl.Put(t.Context(), key, b, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	cfg.Dataset.Prefix = "ds"
	cfg.Decode.Cache = false
	for _, c := range []struct {
		limit int64
		key   string
		ok    bool
	}{
		{2048, "ds/at-limit.png", true},
		{2048, "ds/over-decode.png", false}, // under the store's limit
		{4096, "ds/over-store.png", false},  // the limits are equal, as by default
		{8192, "ds/over-store.png", false},  // the store's limit is the lower
	} {
		cfg.Decode.MaxObjectBytes = c.limit
		st, err := newDecoder(cfg, cl)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Handle(t.Context(), messages.DecodeTask{RunID: "r", SampleID: 1, Key: c.key})
		switch {
		case c.ok && err != nil:
			t.Errorf("limit %d, %s: %v", c.limit, c.key, err)
		case !c.ok && !errors.Is(err, messages.ErrPermanent):
			t.Errorf("limit %d, %s: %v, want a permanent failure", c.limit, c.key, err)
		case !c.ok && !strings.Contains(err.Error(), "size limit"):
			t.Errorf("limit %d, %s: %v, want it to name the size limit", c.limit, c.key, err)
		}
	}
}

// tinyPNG is a valid 2x2 gray PNG.
func tinyPNG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
