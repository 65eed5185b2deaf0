package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/store"
)

func TestSecretEnv(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withNewline, empty := file("pw", "pw-Se4-secret\n"), file("empty", "\n")
	tests := []struct {
		name    string
		env     map[string]string
		want    string // SUPFLOW_NATS_PASSWORD as resolved
		wantErr string
	}{
		{"variable", map[string]string{"SUPFLOW_NATS_PASSWORD": "pw-Se4-secret"}, "pw-Se4-secret", ""},
		{"file, newline dropped", map[string]string{"SUPFLOW_NATS_PASSWORD_FILE": withNewline}, "pw-Se4-secret", ""},
		{"neither", nil, "", ""},
		{"both", map[string]string{"SUPFLOW_NATS_PASSWORD": "x", "SUPFLOW_NATS_PASSWORD_FILE": withNewline}, "", "both SUPFLOW_NATS_PASSWORD and SUPFLOW_NATS_PASSWORD_FILE"},
		{"missing file", map[string]string{"SUPFLOW_NATS_PASSWORD_FILE": filepath.Join(dir, "nope")}, "", "SUPFLOW_NATS_PASSWORD_FILE: open"},
		{"empty file", map[string]string{"SUPFLOW_NATS_PASSWORD_FILE": empty}, "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv, err := secretEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "Se4") {
					t.Fatalf("err %q holds the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := getenv("SUPFLOW_NATS_PASSWORD"); got != tt.want {
				t.Fatalf("password %q, want %q", got, tt.want)
			}
		})
	}
}

// TestIntegrationCredentialsNeverLeak runs a small pipeline, one process per
// stage, against MinIO and a NATS server that requires a password, with
// known, distinctive credentials (the NATS password through a secrets file,
// the S3 secret key through the environment), plus commands that fail for
// wrong credentials, endpoints and buckets. Nothing they print, nothing
// written locally or to the bucket, and no message left on the bus (the
// dead-letter stream included) may contain a secret.
func TestIntegrationCredentialsNeverLeak(t *testing.T) {
	c := clustertest.New(t, `
dataset: {prefix: sec, limit_train: 64, limit_test: 32}
decode: {gray: true}
model: {widths: [4, 8, 8, 16], blocks: [1, 1, 1, 1], feat_dim: 32}
augment: {size: 28, flip_p: 0}
train: {epochs: 1, batch_size: 32, knn_every: 0}
evaluate: {epochs: 2, knn_k: 5}
`)
	const (
		natsUser  = "stage"
		natsPass  = "nats-pw-Lk93-secret"
		natsToken = "nats-tok-Lk93-secret"
		wrongPass = "nats-pw-wrong-Lk93"
		wrongS3   = "s3-sk-wrong-Lk93-secret"
	)
	ak, s3Secret := c.MinIO().Credentials()
	secrets := []string{natsPass, natsToken, wrongPass, wrongS3, s3Secret, "Lk93"}

	ns, err := bus.StartEmbedded(t.Context(), bus.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, User: natsUser, Password: natsPass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	passFile := filepath.Join(t.TempDir(), "nats_password")
	if err := os.WriteFile(passFile, []byte(natsPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	natsEnv := []string{"SUPFLOW_BUS_URL=" + ns.URL(), "SUPFLOW_NATS_USER=" + natsUser}
	env := append([]string{"SUPFLOW_NATS_PASSWORD_FILE=" + passFile}, natsEnv...)

	outputs := map[string]string{} // everything any process printed, by command
	c.Wait(c.StartEnv("ingest", env, "ingest"), 3*time.Minute)
	// One corrupt image, so that the run dead-letters a message.
	s3 := c.Store()
	d, err := dataset.Load(t.Context(), s3, "sec")
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Put(t.Context(), d.Split("train")[0].Key, []byte("not an image"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	c.StartEnv("decode", env, "decode")
	c.StartEnv("augment", env, "augment")
	train := c.StartEnv("train", env, "train")
	eval := c.StartEnv("evaluate", env, "evaluate", "--wait")
	c.Wait(c.StartEnv("feed", env, "feed"), 2*time.Minute)
	c.Wait(train, 3*time.Minute)
	c.Wait(eval, 3*time.Minute)
	if !strings.Contains(eval.Output(), "RESULT ") {
		t.Fatalf("the run did not finish:\n%s", clustertest.Tail(eval.Output(), 2000))
	}

	// Commands that must fail, each with one clear line.
	hostPort := strings.TrimPrefix(ns.URL(), "nats://")
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"wrong NATS password", append([]string{"SUPFLOW_NATS_PASSWORD=" + wrongPass}, natsEnv...), []string{"decode"}, 1, "Authorization Violation"},
		{"NATS token the server does not take", []string{"SUPFLOW_BUS_URL=" + ns.URL(), "SUPFLOW_NATS_TOKEN=" + natsToken}, []string{"augment"}, 1, "Authorization Violation"},
		{"two NATS secrets", append([]string{"SUPFLOW_NATS_PASSWORD=" + natsPass, "SUPFLOW_NATS_TOKEN=" + natsToken}, env...), []string{"train"}, 2, "SUPFLOW_NATS_PASSWORD"},
		{"NATS password in the URL", []string{"SUPFLOW_BUS_URL=nats://" + natsUser + ":" + natsPass + "@" + hostPort}, []string{"decode"}, 2, "bus.url"},
		{"wrong S3 secret key", append([]string{"SUPFLOW_S3_SECRET_KEY=" + wrongS3}, env...), []string{"train"}, 1, "access denied"},
		{"wrong S3 endpoint", append([]string{"SUPFLOW_STORE_ENDPOINT=127.0.0.1:1"}, env...), []string{"ingest"}, 1, "127.0.0.1:1"},
		{"S3 secret in the endpoint", append([]string{"SUPFLOW_STORE_ENDPOINT=" + ak + ":" + s3Secret + "@" + c.MinIO().Endpoint()}, env...), []string{"ingest"}, 2, "store.endpoint"},
		{"invalid bucket", append([]string{"SUPFLOW_STORE_BUCKET=Bad_Bucket"}, env...), []string{"train"}, 2, "store.bucket"},
		{"bucket without a data set", append([]string{"SUPFLOW_STORE_BUCKET=empty-sec"}, env...), []string{"train"}, 1, "supflow ingest"},
		{"checkpoint key outside the bucket's tree", env, []string{"evaluate", "--checkpoint", "../etc/passwd"}, 2, "--checkpoint"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := c.Command(tt.args...)
			cmd.Env = append(cmd.Env, tt.env...)
			start := time.Now()
			out, code := combined(cmd)
			outputs[tt.name] = out
			if code != tt.code {
				t.Fatalf("exit code %d, want %d\n%s", code, tt.code, out)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v to fail", d)
			}
			last := lastErrorLine(out)
			if !strings.Contains(last, tt.want) {
				t.Errorf("error line %q does not say %q\n%s", last, tt.want, out)
			}
			t.Logf("exit %d in %v: %s", code, time.Since(start).Round(time.Millisecond), last)
		})
	}
	cfgCmd := c.Command("config")
	cfgCmd.Env = append(cfgCmd.Env, append([]string{"SUPFLOW_NATS_PASSWORD=" + natsPass, "SUPFLOW_NATS_TOKEN=" + natsToken}, natsEnv...)...)
	out, code := combined(cfgCmd)
	if code != 0 || !strings.Contains(out, "bucket: itest") {
		t.Fatalf("supflow config: exit %d\n%s", code, out)
	}
	outputs["config"] = out
	for _, p := range c.Procs() {
		outputs[p.Name()] = p.Output()
	}
	for name, out := range outputs {
		assertNoSecret(t, "output of "+name, []byte(out), secrets)
	}
	local := 0
	err = filepath.WalkDir(c.WorkDir(), func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		assertNoSecret(t, path, b, secrets)
		local++
		return err
	})
	if err != nil || local < 2 {
		t.Fatalf("%d local files (want the reports): %v", local, err)
	}
	objs, err := s3.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	reports := 0
	for _, o := range objs {
		b, err := s3.Get(t.Context(), o.Key)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecret(t, "s3://itest/"+o.Key, b, secrets)
		for k, v := range o.Metadata {
			assertNoSecret(t, "metadata of "+o.Key, []byte(k+"="+v), secrets)
		}
		if strings.HasPrefix(o.Key, "runs/") {
			reports++
		}
	}
	if reports < 3 {
		t.Errorf("%d objects under runs/, want checkpoints and reports", reports)
	}
	n := assertNoSecretOnBus(t, ns.URL(), natsUser, natsPass, secrets)
	if n["supflow_dead_letter"] == 0 {
		t.Errorf("no dead-lettered message to check (messages per stream: %v)", n)
	}
	t.Logf("checked %d outputs, %d local files, %d objects, messages per stream %v", len(outputs), local, len(objs), n)
}

// combined runs cmd and returns its stdout and stderr and exit code.
func combined(cmd *exec.Cmd) (string, int) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	return out.String(), cmd.ProcessState.ExitCode()
}

func assertNoSecret(t *testing.T, where string, b []byte, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s contains the secret %q", where, s)
		}
	}
}

// assertNoSecretOnBus reads every message still stored in every stream of
// the server, headers and data, and returns how many each stream held.
func assertNoSecretOnBus(t *testing.T, url, user, pass string, secrets []string) map[string]int {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, pass))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	counts := map[string]int{}
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		s, err := js.Stream(ctx, info.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue // consumed from a work queue
			}
			if err != nil {
				t.Fatal(err)
			}
			counts[info.Config.Name]++
			where := info.Config.Name + " message " + m.Subject
			assertNoSecret(t, where, m.Data, secrets)
			for k, vs := range m.Header {
				assertNoSecret(t, where+" header "+k, []byte(k+": "+strings.Join(vs, ", ")), secrets)
			}
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}
