package main

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"regexp"
	"slices"
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

// TestAugmentFlagIsTheKeysOverride: `decode --augment` sets
// decode.augment, in command-line order with --set and over the file and
// the environment, and a decode worker then mounts the fused route;
// `supflow run` mounts it in place of both decode's and augment's.
func TestAugmentFlagIsTheKeysOverride(t *testing.T) {
	external := []string{"--config", "", "--set", "bus.embedded=false", "--set", "bus.url=nats://127.0.0.1:1"}
	for _, tt := range []struct {
		name string
		env  string // SUPFLOW_DECODE_AUGMENT
		args []string
		want bool
	}{
		{"neither", "", nil, false},
		{"flag", "", []string{"--augment"}, true},
		{"flag=true", "", []string{"--augment=true"}, true},
		{"environment", "true", nil, true},
		{"flag=false over the environment", "true", []string{"--augment=false"}, false},
		{"--set after the flag", "", []string{"--augment", "--set", "decode.augment=false"}, false},
		{"flag after --set", "", []string{"--set", "decode.augment=true", "--augment=false"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("SUPFLOW_DECODE_AUGMENT", tt.env)
			}
			cmd := commands()["decode"]
			o := &options{}
			if _, err := parseArgs(newFlagSet("decode", cmd, o), append(append([]string(nil), external...), tt.args...)); err != nil {
				t.Fatal(err)
			}
			e := &env{opts: o, term: newTerm(&bytes.Buffer{})}
			if err := e.prepare("decode", cmd); err != nil {
				t.Fatal(err)
			}
			if e.cfg.Decode.Augment != tt.want {
				t.Errorf("decode.augment = %v, want %v", e.cfg.Decode.Augment, tt.want)
			}
			want := []string{"decode"}
			if tt.want {
				want = []string{fused}
			}
			if got := routesOf(e.cfg, "decode"); !slices.Equal(got, want) {
				t.Errorf("decode mounts %v, want %v", got, want)
			}
		})
	}

	cfg := config.Default()
	for _, tt := range []struct {
		augment bool
		stages  []string
		want    []string
	}{
		{false, []string{"decode", "augment"}, []string{"decode", "augment"}}, // supflow run
		{true, []string{"decode", "augment"}, []string{fused}},
		{true, []string{"augment"}, []string{"augment"}}, // an augment worker beside fused ones
	} {
		cfg.Decode.Augment = tt.augment
		if got := routesOf(cfg, tt.stages...); !slices.Equal(got, tt.want) {
			t.Errorf("decode.augment %v: %v mount %v, want %v", tt.augment, tt.stages, got, tt.want)
		}
	}

	code, _, stderr := runCLI(t.Context(), "decode", "--help")
	if code != 0 || !regexp.MustCompile(`(?m)^  -augment\n.*no images edge.*\(sets decode\.augment`).MatchString(stderr) {
		t.Errorf("decode --help: exit %d, want 0 and -augment naming decode.augment\n%s", code, stderr)
	}
	code, _, stderr = runCLI(t.Context(), append([]string{"decode", "--augment=maybe"}, external...)...)
	if code != exitUsage || !strings.Contains(stderr, `invalid boolean value "maybe" for -augment`) {
		t.Errorf("--augment=maybe: exit %d, want 2\n%s", code, stderr)
	}
}
