package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/supflow/supflow/internal/smallfile"
)

// TestLoadRefusesFilesThatAreNotSmallRegularFiles: --config names a file
// the operator chose, perhaps by mistake; whatever it is, Load returns
// promptly with an error naming it. Before, /dev/zero was read until the
// kernel killed the process and a FIFO blocked Load until SIGKILL.
func TestLoadRefusesFilesThatAreNotSmallRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: MaxFileBytes+1 bytes of "\0" without writing them.
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tt := range []struct {
		name, path string
		want       error
	}{
		{"endless device", "/dev/zero", smallfile.ErrNotRegular},
		{"FIFO without a writer", fifo, smallfile.ErrNotRegular},
		{"directory", dir, smallfile.ErrNotRegular},
		{"file over MaxFileBytes", big, smallfile.ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); err != nil {
				t.Skip(err)
			}
			_, err := Load(tt.path, noEnv, nil)
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("Load(%s) = %v, want ErrInvalid and %v naming the file", tt.path, err, tt.want)
			}
		})
	}
}

// TestLoadNeverEchoesTheFile: a file that is not pipeline.yaml (a secret
// file given as --config, a .creds file, a YAML file with secrets in its
// values) fails to load with an error that names lines, columns and keys
// but never repeats its text. yaml.v3 quotes up to 7 characters of a value
// it cannot convert, a repeated key and an unknown anchor in full.
func TestLoadNeverEchoesTheFile(t *testing.T) {
	const secret = "SeCr3tVaLuE-Qm81Zx"
	for _, tt := range []struct{ name, body string }{
		{"a token alone", secret + "\n"},
		{"a .creds file", "-----BEGIN NATS USER JWT-----\n" + secret + "\n------END NATS USER JWT------\n\n" +
			"************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\n\n" +
			"-----BEGIN USER NKEY SEED-----\n" + secret + "\n------END USER NKEY SEED------\n"},
		{"an env file", "SUPFLOW_S3_SECRET_KEY=" + secret + "\n"},
		{"a secret as a section", secret + ": 1\n"},
		{"a secret as a key", "train:\n  " + secret + ": 1\n"},
		{"a secret as a setting's value", "train:\n  epochs: " + secret + "\n"},
		{"a secret as a section's value", "train: " + secret + "\n"},
		{"a secret in a list", "model:\n  widths: [8, " + secret + ", 8, 8]\n"},
		{"a secret as an anchor", "train:\n  epochs: *" + secret + "\n"},
		{"a secret as a tag", "train:\n  epochs: !" + secret + " 3\n"},
		{"a secret in bad YAML", "train: {epochs: \"" + secret + "\n"},
		{"a repeated secret key", "x:\n  " + secret + ": 1\n  " + secret + ": 2\n"},
		{"a secret in a second document", "train:\n  epochs: 3\n---\n" + secret + "\n"},
		{"a kubernetes secret", "apiVersion: v1\nkind: Secret\ndata:\n  password: " + secret + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, tt.body), noEnv, nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load = %v, want ErrInvalid", err)
			}
			for i := 0; i+5 <= len(secret); i++ {
				if strings.Contains(err.Error(), secret[i:i+5]) {
					t.Fatalf("error repeats %q of the file's secret:\n%v", secret[i:i+5], err)
				}
			}
			if !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "not valid YAML") {
				t.Errorf("error %q does not say where", err)
			}
		})
	}
}

// intKeys are the settings of integer type, list elements included.
func intKeys(t *testing.T) map[string]reflect.Type {
	t.Helper()
	keys := map[string]reflect.Type{}
	walk(reflect.ValueOf(Default()).Elem(), "", func(key string, v reflect.Value) {
		typ := v.Type()
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if k := typ.Kind(); k == reflect.Slice || k == reflect.Array {
			typ = typ.Elem()
		}
		if isInt(typ) {
			keys[key] = v.Type()
		}
	})
	if len(keys) < 20 {
		t.Fatalf("only %d integer keys: %v", len(keys), keys)
	}
	return keys
}

// TestSourcesAgreeOnIntegers: for every integer setting, the file, the
// environment and --set refuse the same decimal values, naming the key.
// yaml.v3 truncated batch_size: 8.99 to 8 and epochs: 1.9 to 1, which
// --set and the environment refused.
func TestSourcesAgreeOnIntegers(t *testing.T) {
	for key, typ := range intKeys(t) {
		section, name, _ := strings.Cut(key, ".")
		for _, v := range []string{"8.99", "1.9", "1e3", "8.0", ".inf"} {
			value := v
			if k := typ.Kind(); k == reflect.Slice || k == reflect.Array {
				value = "[" + strings.Repeat(v+", ", 3) + v + "]"
				v = strings.Repeat(v+",", 3) + v
			}
			fileErr := func() error {
				_, err := Load(write(t, section+":\n  "+name+": "+value+"\n"), noEnv, nil)
				return err
			}()
			envErr := func() error {
				_, err := Load("", func(k string) (string, bool) { return v, k == EnvName(key) }, nil)
				return err
			}()
			_, setErr := Load("", noEnv, []string{key + "=" + v})
			for src, err := range map[string]error{"file": fileErr, "env": envErr, "--set": setErr} {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), key) {
					t.Errorf("%s %s=%s: %v, want ErrInvalid naming the key", src, key, v, err)
				}
			}
		}
	}
}

// TestLoadOneDocument: a second YAML document was silently ignored.
func TestLoadOneDocument(t *testing.T) {
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{"---\ntrain:\n  epochs: 3\n", true},
		{"train:\n  epochs: 3\n...\n", true},
		{"train:\n  epochs: 3\n---\n", true},
		{"train:\n  epochs: 3\n---\ntrain:\n  epochs: 5\n", false},
		{"train:\n  epochs: 3\n---\nbogus\n", false},
		{"train:\n  epochs: 3\n--- {}\n", false},
	} {
		c, err := Load(write(t, tt.body), noEnv, nil)
		switch {
		case tt.ok && (err != nil || c.Train.Stage.Epochs != 3):
			t.Errorf("%q: %v", tt.body, err)
		case !tt.ok && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "second YAML document")):
			t.Errorf("%q: %v, want the second document refused", tt.body, err)
		}
	}
}

// TestLoadStructure: what yaml.v3 reported with the file's text, or not
// at all, now names the key and line.
func TestLoadStructure(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"train:\n  epochs: 3\n  epochs: 4\n", "line 3: train.epochs is set twice (first at line 2)"},
		{"train: 3\n", "line 1: train: want a mapping of the section's keys, got an integer"},
		{"- train\n", "line 1: want a mapping of sections"},
		{"trian:\n  epochs: 3\n", "line 1: unknown key trian (did you mean train?)"},
		{"train:\n  epocs: 3\n", "line 2: unknown key train.epocs (did you mean train.epochs?)"},
		{"train:\n  Epochs: 3\n", "line 2, column 3: unknown key in section train (its name is not shown"},
		{"augment:\n  scale: [0.2, 0.5, 1]\n", "line 2: augment.scale: want a list of 2 numbers, got a list of 3"},
		{"model:\n  blocks: [1, 1, x, 1]\n", "line 2, column 18: model.blocks[2]: want an integer, got a string"},
		{"bus:\n  ack_wait: 60\n", "bus.ack_wait: want a duration (e.g. 30s, 2m), got an integer"},
		{"train:\n  <<: {epochs: 3}\n", "want a key name, got a merge key"},
		{"a: &x {b: *x}\n", "unknown key a"},
		{"train: {epochs: 3\n", "not valid YAML"},
	} {
		_, err := Load(write(t, tt.body), noEnv, nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v\nwant %q", tt.body, err, tt.want)
		}
	}
}

// TestCheckEnv: a misspelled SUPFLOW_* variable was ignored; now it is
// refused with the closest variable (misspelled names are spelled in two
// parts here, for cmd/supflow's TestEveryVariableIsKnown), while the
// settings' variables and the declared others pass, and other prefixes
// are not looked at.
func TestCheckEnv(t *testing.T) {
	other := []string{"SUPFLOW_NATS_PASSWORD", "SUPFLOW_SIMD"}
	if err := CheckEnv([]string{"SUPFLOW_TRAIN_EPOCHS=3", "SUPFLOW_NATS_PASSWORD=x", "SUPFLOW_SIMD=off", "PATH=/bin", "SUPFLOWX=1"}, other); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, want string }{
		{"SUPFLOW_" + "TRAIN_EPOCS", "did you mean SUPFLOW_TRAIN_EPOCHS (train.epochs)?"},
		{"SUPFLOW_" + "TRIAN_BATCH_SIZE", "did you mean SUPFLOW_TRAIN_BATCH_SIZE (train.batch_size)?"},
		{"SUPFLOW_" + "NATS_PASWORD", "did you mean SUPFLOW_NATS_PASSWORD?"},
		{"SUPFLOW_" + "BATCH_SIZE", "SUPFLOW_" + "BATCH_SIZE is not a setting's variable"},
		{"SUPFLOW_train_epochs", "SUPFLOW_train_epochs is not"},
		{"SUPFLOW_" + "X\nY", `"SUPFLOW_` + `X\nY" is not`},
	} {
		err := CheckEnv([]string{tt.name + "=Secret-Value-Zq"}, other)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "Secret-Value") {
			t.Errorf("%s: error repeats the value: %v", tt.name, err)
		}
	}
}

// FuzzLoadNeverEchoes loads arbitrary bytes with a secret-like token
// inserted at any position: a file that does not load must fail with an
// error that repeats no 5 characters of the token, and one that loads must
// validate.
func FuzzLoadNeverEchoes(f *testing.F) {
	f.Add("", uint16(0))
	f.Add("train:\n  epochs: 3\n", uint16(17))
	f.Add("train:\n  epochs: 3\n", uint16(9))
	f.Add("train: {epochs: 3, batch_size: 8}\n", uint16(16))
	f.Add("model:\n  widths: [8, 16, 32, 64]\n", uint16(20))
	f.Add("a: &x 1\nb: *x\n", uint16(12))
	f.Add("-----BEGIN NATS USER JWT-----\n\n------END NATS USER JWT------\n", uint16(30))
	f.Add("x:\n  : 1\n  : 2\n", uint16(5))
	f.Fuzz(func(t *testing.T, body string, at uint16) {
		const token = "Zq9XsEcR7Kp4W"
		i := int(at) % (len(body) + 1)
		p := filepath.Join(t.TempDir(), "p.yaml")
		if err := os.WriteFile(p, []byte(body[:i]+token+body[i:]), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p, noEnv, nil)
		if err == nil {
			if cfg.Validate() != nil {
				t.Fatal("Load returned a config that does not validate")
			}
			return
		}
		for j := 0; j+5 <= len(token); j++ {
			if strings.Contains(err.Error(), token[j:j+5]) {
				t.Fatalf("error repeats %q of the file:\n%v", token[j:j+5], err)
			}
		}
	})
}
