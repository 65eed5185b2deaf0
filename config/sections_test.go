package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/stages/train"
	"github.com/supflow/supflow/store"
	"github.com/supflow/supflow/transform"
)

// migrated are the sections whose keys packages declare.
var migrated = []string{"decode", "augment", "model", "train", "evaluate", "store", "bus"}

// TestSectionKeysUnchanged: the sections packages own keep the keys (and
// so the SUPFLOW_* variables) pipeline.yaml had when config declared them
// itself, plus the schedule's and LARS's knobs that became keys later
// (train.decay_epochs, decay_rate, warmup_from, trust_coefficient) and
// train.drop_last, the trainer backend's train.backend, pjrt_plugin,
// devices and sync_bn, and decode.augment (config's own, beside the
// stage's keys).
func TestSectionKeysUnchanged(t *testing.T) {
	want := []string{
		"augment.antialias", "augment.brightness", "augment.contrast", "augment.flip_p", "augment.grayscale_p",
		"augment.hue", "augment.jitter_p", "augment.n_views", "augment.ratio", "augment.saturation",
		"augment.scale", "augment.size", "augment.workers",
		"decode.augment", "decode.cache", "decode.gray", "decode.max_object_bytes", "decode.max_pixels", "decode.resize_shorter",
		"decode.workers",
		"model.arch", "model.blocks", "model.dtype", "model.feat_dim", "model.head", "model.stem", "model.widths",
		"train.backend", "train.devices", "train.pjrt_plugin", "train.sync_bn",
		"train.base_temperature", "train.batch_size", "train.checkpoint_every", "train.decay_epochs", "train.decay_rate", "train.drop_last",
		"train.epochs", "train.knn_every", "train.knn_k", "train.knn_samples", "train.knn_temperature", "train.log_every", "train.lr",
		"train.method", "train.momentum", "train.optimizer", "train.schedule", "train.temperature", "train.threads",
		"train.trust_coefficient", "train.warm", "train.warm_epochs", "train.warmup_from", "train.weight_decay",
		"evaluate.batch_size", "evaluate.epochs", "evaluate.knn_k", "evaluate.lr", "evaluate.momentum",
		"evaluate.protocol", "evaluate.schedule", "evaluate.weight_decay",
		"store.bucket", "store.ca_file", "store.embedded", "store.endpoint", "store.region", "store.secure",
		"bus.ack_wait", "bus.batch", "bus.ca_file", "bus.cert_file", "bus.creds_file", "bus.embedded", "bus.key_file",
		"bus.max_ack_pending", "bus.max_deliver", "bus.max_payload", "bus.nkey_file", "bus.replicas", "bus.storage", "bus.stream_max_bytes", "bus.stream_max_msgs", "bus.url",
	}
	slices.Sort(want)
	var got []string
	for _, k := range Keys() {
		if section, _, _ := strings.Cut(k, "."); slices.Contains(migrated, section) {
			got = append(got, k)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("keys\n got %v\nwant %v", got, want)
	}
}

// TestSectionDefaultsUnchanged: the packages' DefaultConfig gives the
// values config/defaults.go held.
func TestSectionDefaultsUnchanged(t *testing.T) {
	c := Default()
	d := c.Decode
	if d.Workers != 2 || d.MaxPixels != 50_000_000 || d.MaxObjectBytes != 64<<20 || d.ResizeShorter != 0 || d.Gray || d.Cache {
		t.Errorf("decode defaults %+v", d)
	}
	a := c.Augment
	if a.Workers != 2 || a.Seed != 0 || a.Size != 32 || a.NViews != 2 || a.Scale != [2]float64{0.2, 1} ||
		a.Ratio != [2]float64{3.0 / 4, 4.0 / 3} || !*a.Antialias || *a.FlipP != 0.5 || *a.JitterP != 0.8 ||
		a.Jitter != (transform.JitterConfig{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}) || *a.GrayP != 0.2 {
		t.Errorf("augment defaults %+v", a)
	}
	if c.Augment.FlipP == Default().Augment.FlipP {
		t.Errorf("two Defaults share augment.flip_p")
	}
}

// TestSectionErrorsNameTheKey: the sections' own Validate reports, under
// the section's prefix, what config used to report itself.
func TestSectionErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		sets       []string
		env        map[string]string
		want       string
	}{
		{"n_views above the message cap", "augment:\n  n_views: 17\n", nil, nil, "augment.n_views = 17: want at most 16"},
		{"one view", "", []string{"augment.n_views=1"}, nil, "augment.n_views = 1: want an integer >= 2"},
		{"size 0 is not the default", "augment:\n  size: 0\n", nil, nil, "augment.size = 0: want an integer in [4, 1024]"},
		{"size 3", "", []string{"augment.size=3"}, nil, "augment.size = 3: want an integer in [4, 1024]"},
		{"grayscale_p", "augment:\n  grayscale_p: 1.5\n", nil, nil, "augment.grayscale_p = 1.5: want a number in [0, 1]"},
		{"flip_p from the environment", "", nil, map[string]string{"SUPFLOW_AUGMENT_FLIP_P": "-1"}, "augment.flip_p = -1"},
		{"hue", "augment:\n  hue: 0.7\n", nil, nil, "augment.hue = 0.7: want a number in [0, 0.5]"},
		{"brightness", "", []string{"augment.brightness=-0.1"}, nil, "augment.brightness = -0.1"},
		{"ratio", "augment:\n  ratio: [2, 1]\n", nil, nil, "augment.ratio = [2 1]"},
		{"augment workers", "", []string{"augment.workers=0"}, nil, "augment.workers = 0: want an integer in [1, 256]"},
		{"decode workers", "", []string{"decode.workers=300"}, nil, "decode.workers = 300: want an integer in [1, 256]"},
		{"max_pixels 0", "decode:\n  max_pixels: 0\n", nil, nil, "decode.max_pixels = 0: want an integer in [1, 2147483647]"},
		{"max_object_bytes", "", []string{"decode.max_object_bytes=-1"}, nil, "decode.max_object_bytes = -1"},
		{"resize_shorter", "decode:\n  resize_shorter: -1\n", nil, nil, "decode.resize_shorter = -1: want an integer in [0, 16384]"},
		{"old gray_p key", "augment:\n  gray_p: 0.1\n", nil, nil, "gray_p"},
		{"old nested jitter key", "augment:\n  jitter: {hue: 0.1}\n", nil, nil, "jitter"},
		{"seed is run.seed", "", []string{"augment.seed=3"}, nil, `unknown key "augment.seed"`},
		{"flip_p wrong type", "", []string{"augment.flip_p=x"}, nil, "augment.flip_p"},
		{"arch", "model:\n  arch: vgg\n", nil, nil, `model.arch = "vgg": want one of resnet18, resnet34, resnet50, resnet101`},
		{"stem", "", []string{"model.stem=tiny"}, nil, `model.stem = "tiny": want one of cifar, imagenet`},
		{"widths length", "", []string{"model.widths=8,16"}, nil, "model.widths = [8 16]: want empty (the default 64,128,256,512) or 4 integers in [1, 4096]"},
		{"blocks range", "model:\n  blocks: [1, 0, 1, 1]\n", nil, nil, "model.blocks = [1 0 1 1]: want empty (the arch's) or 4 integers"},
		{"feat_dim 0", "", nil, map[string]string{"SUPFLOW_MODEL_FEAT_DIM": "0"}, "model.feat_dim = 0: want an integer in [1, 65536]"},
		{"head", "", []string{"model.head=mlp2"}, nil, `model.head = "mlp2"`},
		{"dtype", "model:\n  dtype: float16\n", nil, nil, `model.dtype = "float16": want one of float32, float64`},
		{"in_channels is the data's", "", []string{"model.in_channels=1"}, nil, `unknown key "model.in_channels"`},
		{"width_mult is not a key", "model:\n  width_mult: 0.5\n", nil, nil, "width_mult"},
		{"method", "train:\n  method: byol\n", nil, nil, `train.method = "byol": want one of supcon, simclr, ce`},
		{"batch of one", "", []string{"train.batch_size=1"}, nil, "train.batch_size = 1: want an integer in [2, 65536]"},
		{"epochs 0", "train:\n  epochs: 0\n", nil, nil, "train.epochs = 0: want an integer in [1, 100000]"},
		{"lr 0", "", []string{"train.lr=0"}, nil, "train.lr = 0: want a number in [1e-08, 100]"},
		{"momentum 1", "", nil, map[string]string{"SUPFLOW_TRAIN_MOMENTUM": "1"}, "train.momentum = 1: want a number in [0, 0.9999]"},
		{"weight_decay", "train:\n  weight_decay: -1\n", nil, nil, "train.weight_decay = -1"},
		{"optimizer", "", []string{"train.optimizer=adam"}, nil, `train.optimizer = "adam": want one of sgd, lars`},
		{"schedule", "train:\n  schedule: linear\n", nil, nil, `train.schedule = "linear": want one of cosine, step`},
		{"warm-up longer than the run", "train:\n  warm: true\n  epochs: 5\n  warm_epochs: 6\n", nil, nil, "train.warm_epochs = 6: want an integer in [1, 5]"},
		{"warm-up forced above batch 256", "", []string{"train.batch_size=300", "train.warm_epochs=0"}, nil, "train.warm_epochs = 0: want an integer in [1, 100]"},
		{"negative warm_epochs", "", []string{"train.warm_epochs=-1"}, nil, "train.warm_epochs = -1"},
		{"temperature", "train:\n  temperature: 0\n", nil, nil, "train.temperature = 0: want a number in [0.0001, 100]"},
		{"base_temperature", "", []string{"train.base_temperature=1000"}, nil, "train.base_temperature = 1000"},
		{"checkpoint_every", "", []string{"train.checkpoint_every=0"}, nil, "train.checkpoint_every = 0: want an integer in [1, 100000]"},
		{"knn_every", "", []string{"train.knn_every=-1"}, nil, "train.knn_every = -1"},
		{"knn_samples", "train:\n  knn_samples: 0\n", nil, nil, "train.knn_samples = 0"},
		{"knn_k", "", []string{"train.knn_k=0"}, nil, "train.knn_k = 0: want an integer in [1, 10000]"},
		{"knn_temperature", "", []string{"train.knn_temperature=-1"}, nil, "train.knn_temperature = -1"},
		{"threads", "", []string{"train.threads=2000"}, nil, "train.threads = 2000: want an integer in [0, 1024]"},
		{"the schedule's epochs are train.epochs", "", []string{"train.schedule.epochs=3"}, nil, `unknown key "train.schedule.epochs"`},
		{"SupContrast's lr_decay_rate is decay_rate", "train:\n  lr_decay_rate: 0.2\n", nil, nil, "lr_decay_rate"},
		{"decay_epochs past the run", "", []string{"train.epochs=100", "train.decay_epochs=60,100"}, nil,
			"train.decay_epochs = [60 100]: want empty (70%, 80%, 90% of epochs) or increasing integers in [1, 99] (epochs-1)"},
		{"decreasing decay_epochs", "train:\n  epochs: 100\n  decay_epochs: [80, 60]\n", nil, nil, "train.decay_epochs = [80 60]"},
		{"decay_epochs not integers", "", []string{"train.decay_epochs=60,x"}, nil, "train.decay_epochs"},
		{"decay_rate 0 is not the default", "train:\n  decay_rate: 0\n", nil, nil, "train.decay_rate = 0: want a number in (0, 1]"},
		{"decay_rate above 1", "", []string{"train.decay_rate=10"}, nil, "train.decay_rate = 10: want a number in (0, 1]"},
		{"warmup_from", "", nil, map[string]string{"SUPFLOW_TRAIN_WARMUP_FROM": "-0.1"}, "train.warmup_from = -0.1: want a number in [1e-08, 100]"},
		{"trust_coefficient", "", []string{"train.trust_coefficient=0"}, nil, "train.trust_coefficient = 0: want a number in (0, 1]"},
		{"evaluate epochs", "evaluate:\n  epochs: 0\n", nil, nil, "evaluate.epochs = 0: want an integer in [1, 10000]"},
		{"evaluate batch", "", []string{"evaluate.batch_size=0"}, nil, "evaluate.batch_size = 0: want an integer in [1, 65536]"},
		{"evaluate lr", "", []string{"evaluate.lr=1000"}, nil, "evaluate.lr = 1000: want a number in [1e-08, 100]"},
		{"evaluate momentum 0 is not none", "evaluate:\n  momentum: 0\n", nil, nil, "evaluate.momentum = 0: want a number in (0, 0.9999]"},
		{"evaluate weight_decay", "", nil, map[string]string{"SUPFLOW_EVALUATE_WEIGHT_DECAY": "2"}, "evaluate.weight_decay = 2"},
		{"evaluate schedule", "", []string{"evaluate.schedule=linear"}, nil, `evaluate.schedule = "linear": want one of cosine, step`},
		{"evaluate knn_k", "", []string{"evaluate.knn_k=0"}, nil, "evaluate.knn_k = 0: want an integer in [1, 10000]"},
		{"evaluate protocol", "", []string{"evaluate.protocol=main_linear"}, nil, `evaluate.protocol = "main_linear": want one of frozen, supcontrast`},
		{"evaluate has no knn_temperature", "", []string{"evaluate.knn_temperature=0.2"}, nil, `unknown key "evaluate.knn_temperature"`},
		{"min_lr is not a key", "evaluate:\n  min_lr: 0.01\n", nil, nil, "min_lr"},
		{"bucket", "", []string{"store.bucket=My_Bucket"}, nil, `store.bucket = "My_Bucket": want an S3 bucket name`},
		{"bucket ending in '-'", "store:\n  bucket: data-\n", nil, nil, `store.bucket = "data-"`},
		{"external without endpoint", "store:\n  embedded: false\n", nil, nil, `store.endpoint = "": want host:port of the S3 server when store.embedded is false`},
		{"endpoint with a scheme", "", []string{"store.endpoint=https://s3:9000"}, nil, `store.endpoint = "https://s3:9000": want host:port without a scheme (use store.secure for HTTPS)`},
		{"endpoint with a path", "", []string{"store.embedded=false", "store.endpoint=s3:9000/x"}, nil, `store.endpoint = "s3:9000/x": want host:port without a path`},
		{"ca_file without TLS", "store:\n  embedded: false\n  endpoint: s3:9000\n  ca_file: /ca.pem\n", nil, nil, `store.ca_file = "/ca.pem": want empty unless the endpoint is HTTPS`},
		{"credentials are not keys", "", []string{"store.access_key=x"}, nil, `unknown key "store.access_key"`},
		{"max_object_size is not a key", "store:\n  max_object_size: 1\n", nil, nil, "max_object_size"},
		{"ack_wait below 1s", "bus:\n  ack_wait: 500ms\n", nil, nil, "bus.ack_wait = 500ms: want a duration in [1s, 1h]"},
		{"ack_wait from the environment", "", nil, map[string]string{"SUPFLOW_BUS_ACK_WAIT": "2h"}, "bus.ack_wait = 2h0m0s: want a duration in [1s, 1h]"},
		{"max_deliver", "", []string{"bus.max_deliver=0"}, nil, "bus.max_deliver = 0: want an integer in [1, 1000]"},
		{"max_ack_pending", "", []string{"bus.max_ack_pending=10001"}, nil, "bus.max_ack_pending = 10001: want an integer in [1, 10000]"},
		{"max_payload", "bus:\n  max_payload: 1000\n", nil, nil, "bus.max_payload = 1000: want an integer in [65536, 67108864]"},
		{"stream_max_msgs", "", []string{"bus.stream_max_msgs=10"}, nil, "bus.stream_max_msgs = 10: want an integer in [16, 10000000]"},
		{"stream_max_bytes", "", []string{"bus.stream_max_bytes=1000"}, nil, "bus.stream_max_bytes = 1000: want an integer in [1048576, 1099511627776], at least max_payload"},
		{"external without url", "", []string{"bus.embedded=false"}, nil, `bus.url = "": want a nats:// URL when bus.embedded is false`},
		{"url scheme", "", []string{"bus.embedded=false", "bus.url=http://nats:4222"}, nil, `bus.url = "http://nats:4222": want nats://, tls://, ws:// or wss:// URLs`},
		{"cert without key", "bus:\n  embedded: false\n  url: tls://nats:4222\n  cert_file: c.pem\n", nil, nil, `bus.key_file = "": want the key of cert_file`},
		{"two auth files", "", []string{"bus.embedded=false", "bus.url=nats://n:4222", "bus.nkey_file=a", "bus.creds_file=b"}, nil, `bus.creds_file = "b": want unset: one authentication method`},
		{"password is not a key", "", []string{"bus.password=x"}, nil, `unknown key "bus.password"`},
		{"connect_timeout is not a key", "bus:\n  connect_timeout: 1s\n", nil, nil, "connect_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = write(t, tt.yaml)
			}
			_, err := Load(path, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, tt.sets)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}

// TestSectionErrorsWrapBothSentinels: a section's error is a FieldError
// wrapping ErrInvalid and the owning package's sentinel.
func TestSectionErrorsWrapBothSentinels(t *testing.T) {
	c := Default()
	c.Augment.Size = 2000
	c.Decode.MaxPixels = -1
	err := c.Validate()
	var keys []string
	for _, fe := range field.List(err) {
		keys = append(keys, fe.Key)
	}
	if !slices.Equal(keys, []string{"decode.max_pixels", "augment.size"}) {
		t.Errorf("keys %v (err %v)", keys, err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || !errors.Is(err, decode.ErrInvalidConfig) || !errors.Is(err, transform.ErrConfig) {
		t.Errorf("err %v does not wrap every sentinel", err)
	}
}

// TestPointerSettings: augment's pointer fields (nil = the default) are set
// from YAML, the environment and --set without touching another Config.
func TestPointerSettings(t *testing.T) {
	other := Default()
	cfg, err := Load(write(t, "augment:\n  flip_p: 0\n  antialias: false\n"),
		func(k string) (string, bool) { return "0.3", k == "SUPFLOW_AUGMENT_JITTER_P" }, []string{"augment.grayscale_p=0.1"})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Augment
	if *a.FlipP != 0 || *a.Antialias || *a.JitterP != 0.3 || *a.GrayP != 0.1 {
		t.Errorf("augment %+v", a)
	}
	if err := Set(cfg, "augment.flip_p=0.25"); err != nil {
		t.Fatal(err)
	}
	if *cfg.Augment.FlipP != 0.25 || *other.Augment.FlipP != 0.5 || *Default().Augment.FlipP != 0.5 {
		t.Errorf("flip_p %v, other %v", *cfg.Augment.FlipP, *other.Augment.FlipP)
	}
	// The stage receives what the file says.
	st := cfg.Augment
	st.Seed = 1
	if _, err := augment.New(st); err != nil {
		t.Fatal(err)
	}
}

// TestWalk: inline structs add their keys at their parent's level; "-",
// untagged and unexported fields and dependencies are skipped.
func TestWalk(t *testing.T) {
	type inner struct {
		A int `yaml:"a"`
	}
	type nested struct {
		B   string  `yaml:"b"`
		In  inner   `yaml:",inline"`
		P   *bool   `yaml:"p"`
		Xs  []int   `yaml:"xs"`
		Arr [2]bool `yaml:"arr"`
	}
	type section struct {
		inner   `yaml:",inline"`
		N       nested             `yaml:"n"`
		Seed    uint64             `yaml:"-"`
		Untag   int                //nolint: an untagged field is not a key
		Dep     func(error) bool   `yaml:"dep"`
		Store   interface{ Get() } `yaml:"store"`
		private int                `yaml:"private"`
	}
	var s section
	_ = s.private
	var keys []string
	walk(reflect.ValueOf(&s).Elem(), "sec", func(k string, _ reflect.Value) { keys = append(keys, k) })
	want := []string{"sec.a", "sec.n.b", "sec.n.a", "sec.n.p", "sec.n.xs", "sec.n.arr"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
}

// TestNullKeepsTheDefault: an empty value keeps the default, for pointer
// settings (augment.flip_p) as for plain ones (decode.max_pixels).
func TestNullKeepsTheDefault(t *testing.T) {
	cfg, err := Load(write(t, "augment:\n  flip_p:\n  antialias: ~\ndecode:\n  max_pixels:\n"), noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Augment.FlipP == nil || *cfg.Augment.FlipP != 0.5 || cfg.Augment.Antialias == nil || !*cfg.Augment.Antialias || cfg.Decode.MaxPixels != 50_000_000 {
		t.Errorf("augment %+v, decode %+v", cfg.Augment, cfg.Decode)
	}
}

// TestModelStageLists: model.widths and model.blocks are lists, empty for
// the arch's defaults, from the file, the environment and --set alike.
func TestModelStageLists(t *testing.T) {
	cfg, err := Load(write(t, "model:\n  widths: [8, 16, 32, 64]\n  blocks: []\n"),
		func(k string) (string, bool) { return "1,2,1,1", k == "SUPFLOW_MODEL_BLOCKS" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Model.Widths, []int{8, 16, 32, 64}) || !slices.Equal(cfg.Model.Blocks, []int{1, 2, 1, 1}) {
		t.Errorf("model %+v", cfg.Model)
	}
	for _, kv := range []string{"model.widths=", "model.blocks=[]"} {
		if err := Set(cfg, kv); err != nil {
			t.Fatal(err)
		}
	}
	if len(cfg.Model.Widths) != 0 || len(cfg.Model.Blocks) != 0 || cfg.Validate() != nil {
		t.Errorf("after clearing: model %+v, %v", cfg.Model, cfg.Validate())
	}
	if def := Default().Model; def.Widths != nil || def.Blocks != nil || def.DType != "float32" || def.Arch != "resnet18" || def.FeatDim != 128 {
		t.Errorf("model defaults %+v", def)
	}
}

// TestTrainScheduleKeys: the schedule's and LARS's knobs come from the
// file, the environment and --set (decay_epochs a list, as model.widths),
// with SupContrast's defaults and milestones derived from the epochs when
// decay_epochs is empty.
func TestTrainScheduleKeys(t *testing.T) {
	def := Default().Train.Engine
	if s, o := def.Schedule, def.Optim; s.DecayEpochs != nil || s.DecayRate != 0.1 || s.WarmupFrom != 0.01 || o.TrustCoefficient != 0.001 {
		t.Errorf("defaults: schedule %+v, optim %+v", s, o)
	}
	env := map[string]string{"SUPFLOW_TRAIN_WARMUP_FROM": "0.001", "SUPFLOW_TRAIN_DECAY_EPOCHS": "10,20"}
	cfg, err := Load(write(t, "train:\n  epochs: 100\n  schedule: step\n  decay_rate: 0.5\n  trust_coefficient: 0.02\n"),
		func(k string) (string, bool) { v, ok := env[k]; return v, ok }, []string{"train.decay_epochs=60,80"})
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Train.EngineConfig()
	if s := e.Schedule; !slices.Equal(s.DecayEpochs, []int{60, 80}) || s.DecayRate != 0.5 || s.WarmupFrom != 0.001 || e.Optim.TrustCoefficient != 0.02 {
		t.Errorf("schedule %+v, optim %+v", s, e.Optim)
	}
	if lr, err := e.Schedule.EpochLR(81); err != nil || lr != cfg.Train.Engine.Schedule.BaseLR*0.25 {
		t.Errorf("epoch 81: lr %v, %v", lr, err)
	}
	if err := Set(cfg, "train.decay_epochs="); err != nil {
		t.Fatal(err)
	}
	e = cfg.Train.EngineConfig()
	if len(e.Schedule.DecayEpochs) != 0 || cfg.Validate() != nil {
		t.Fatalf("after clearing: %v, %v", e.Schedule.DecayEpochs, cfg.Validate())
	}
	// Derived from train.epochs: 70, 80, 90 of 100.
	for epoch, decays := range map[int]float64{70: 1, 71: 0.5, 81: 0.25, 91: 0.125} {
		if lr, err := e.Schedule.EpochLR(epoch); err != nil || lr != e.Schedule.BaseLR*decays {
			t.Errorf("derived, epoch %d: lr %v, %v, want %v", epoch, lr, err, e.Schedule.BaseLR*decays)
		}
	}
}

// TestTrainSection: the flat train section fills the engine's and the
// stage's Configs; the engine's schedule takes the stage's epochs and
// batch size, and a bad epochs is reported once.
func TestTrainSection(t *testing.T) {
	cfg, err := Load(write(t, "train:\n  epochs: 7\n  batch_size: 64\n  optimizer: lars\n  schedule: step\n  knn_k: 5\n"), noEnv,
		[]string{"train.temperature=0.2"})
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Train.EngineConfig()
	if e.Schedule.Epochs != 7 || e.Schedule.BatchSize != 64 || e.Optim.Optimizer != optim.OptimizerLARS ||
		e.Schedule.Decay != optim.DecayStep || e.Loss.Temperature != 0.2 || cfg.Train.Stage.Monitor.KNN.K != 5 {
		t.Errorf("engine part %+v, stage part %+v", e, cfg.Train.Stage)
	}
	if cfg.Train.Engine.Schedule.Epochs != 0 {
		t.Errorf("the section's own schedule holds epochs %d", cfg.Train.Engine.Schedule.Epochs)
	}
	c := Default()
	c.Train.Stage.Epochs = -1
	var keys []string
	for _, fe := range field.List(c.Validate()) {
		keys = append(keys, fe.Key)
	}
	if !slices.Equal(keys, []string{"train.epochs"}) {
		t.Errorf("keys %v", keys)
	}
	def := Default().Train
	if !reflect.DeepEqual(def.Engine, engine.DefaultTrainConfig()) || def.Stage != train.DefaultConfig() || def.Threads != 0 {
		t.Errorf("train defaults %+v", def)
	}
}

// TestEvaluateSection: the evaluate section is the probe's Config and the
// kNN classifier's k; the kNN temperature is train.knn_temperature.
func TestEvaluateSection(t *testing.T) {
	cfg, err := Load(write(t, "evaluate:\n  epochs: 3\n  schedule: step\n  knn_k: 7\ntrain:\n  knn_temperature: 0.2\n"), noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := cfg.Evaluate
	if ev.Probe.Epochs != 3 || ev.Probe.Schedule != probe.Step || ev.Probe.BatchSize != 256 || ev.Probe.Momentum != 0.9 {
		t.Errorf("probe %+v", ev.Probe)
	}
	if got := ev.KNN(cfg.Train.Stage.Monitor.KNN.Temperature); got != (probe.KNNConfig{K: 7, Temperature: 0.2}) {
		t.Errorf("kNN %+v", got)
	}
}

// TestStoreSection: the section is store.Config inline; an embedded store
// needs no endpoint and ignores the keys it does not read, an external one
// is checked by store's rules but for the credentials, which come later
// from the environment.
func TestStoreSection(t *testing.T) {
	for _, tt := range []struct {
		name string
		sets []string
	}{
		{"embedded", nil},
		{"embedded ignores ca_file", []string{"store.ca_file=/ca.pem"}},
		{"external", []string{"store.embedded=false", "store.endpoint=s3:9000", "store.region=eu-west-1"}},
		{"external over TLS", []string{"store.embedded=false", "store.endpoint=s3:443", "store.secure=true", "store.ca_file=/ca.pem"}},
	} {
		if _, err := Load("", noEnv, tt.sets); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	cfg, err := Load(write(t, "store:\n  embedded: false\n  endpoint: s3:9000\n  bucket: data\n"), noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Config{Endpoint: "s3:9000", Bucket: "data", Region: "us-east-1"}); cfg.Store.Config != want {
		t.Errorf("store %+v", cfg.Store.Config)
	}
	c := Default()
	c.Store.Bucket = "x"
	err = c.Validate()
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, store.ErrInvalidConfig) {
		t.Errorf("err %v does not wrap ErrInvalid and store.ErrInvalidConfig", err)
	}
}

// TestBusSection: the section is bus.Config and bus.Limits inline; an
// embedded bus needs no url and ignores the connection keys it does not
// read; ack_wait is a duration in the file, the environment and --set.
func TestBusSection(t *testing.T) {
	for _, tt := range []struct {
		name string
		sets []string
	}{
		{"embedded", nil},
		{"embedded ignores cert_file", []string{"bus.cert_file=c.pem"}},
		{"external", []string{"bus.embedded=false", "bus.url=nats://a:4222,tls://b:4222", "bus.creds_file=x.creds"}},
		{"mutual TLS", []string{"bus.embedded=false", "bus.url=tls://a:4222", "bus.cert_file=c.pem", "bus.key_file=k.pem"}},
	} {
		if _, err := Load("", noEnv, tt.sets); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	cfg, err := Load(write(t, "bus:\n  ack_wait: 90s\n  max_payload: 2097152\n"),
		func(k string) (string, bool) { return "2m", k == "SUPFLOW_BUS_ACK_WAIT" }, []string{"bus.stream_max_msgs=5000"})
	if err != nil {
		t.Fatal(err)
	}
	want := bus.Limits{AckWait: 2 * time.Minute, MaxDeliver: 5, MaxAckPending: 64, MaxPayload: 2 << 20, MaxMsgs: 5000, MaxBytes: 1 << 30, Batch: 256, Replicas: 1, Storage: bus.StorageAuto}
	if cfg.Bus.Limits != want {
		t.Errorf("limits %+v, want %+v", cfg.Bus.Limits, want)
	}
	if Default().Bus.Limits != bus.DefaultLimits() {
		t.Errorf("default limits %+v", Default().Bus.Limits)
	}
	if err := Set(cfg, "bus.ack_wait=soon"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "bus.ack_wait") {
		t.Errorf("--set bus.ack_wait=soon: %v", err)
	}
	b, err := cfg.YAML()
	if err != nil || !strings.Contains(string(b), "ack_wait: 2m0s\n") {
		t.Errorf("YAML: %v\n%s", err, b)
	}
}

// TestDecodeSection: the section is decode.Config inline beside augment,
// which is off by default; augment is a boolean from each source, and a
// bad value is refused naming the key.
func TestDecodeSection(t *testing.T) {
	if d := Default().Decode; d.Augment || d.Config != decode.DefaultConfig() {
		t.Errorf("default decode section %+v", d)
	}
	for _, tt := range []struct {
		name, yaml string
		env        map[string]string
		sets       []string
		want       bool
	}{
		{"default", "", nil, nil, false},
		{"file", "decode:\n  augment: true\n  workers: 3\n", nil, nil, true},
		{"environment", "", map[string]string{"SUPFLOW_DECODE_AUGMENT": "true"}, nil, true},
		{"--set over the file", "decode:\n  augment: true\n", nil, []string{"decode.augment=false"}, false},
		{"the last --set wins", "", nil, []string{"decode.augment=true", "decode.augment=false", "decode.augment=true"}, true},
	} {
		path := ""
		if tt.yaml != "" {
			path = write(t, tt.yaml)
		}
		cfg, err := Load(path, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, tt.sets)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if cfg.Decode.Augment != tt.want {
			t.Errorf("%s: decode.augment = %v, want %v", tt.name, cfg.Decode.Augment, tt.want)
		}
		if tt.name == "file" && cfg.Decode.Workers != 3 {
			t.Errorf("%s: decode.workers = %d beside augment, want 3", tt.name, cfg.Decode.Workers)
		}
	}
	for _, bad := range []struct {
		yaml string
		sets []string
	}{
		{"decode:\n  augment: maybe\n", nil},
		{"decode:\n  augment: 1.5\n", nil},
		{"", []string{"decode.augment=maybe"}},
	} {
		path := ""
		if bad.yaml != "" {
			path = write(t, bad.yaml)
		}
		if _, err := Load(path, noEnv, bad.sets); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "decode.augment") {
			t.Errorf("%q %v: %v, want an error naming decode.augment", bad.yaml, bad.sets, err)
		}
	}
}
