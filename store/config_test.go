package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/supflow/supflow/config/field"
)

// TestConfigValidate: each bad field is one error, named by its key (the
// store section's key in pipeline.yaml) when it is a setting; credentials
// are checked too, and no error repeats one.
func TestConfigValidate(t *testing.T) {
	ok := Config{Endpoint: "127.0.0.1:9000", Bucket: "data", AccessKey: "ak", SecretKey: "sk"}
	tests := []struct {
		name string
		edit func(*Config)
		want error
		key  string // the field error's key; "" for a credential error
	}{
		{"valid", func(*Config) {}, nil, ""},
		{"url endpoint", func(c *Config) { c.Endpoint = "https://s3.example.com" }, nil, ""},
		{"ca over tls", func(c *Config) { c.Secure, c.CAFile = true, "/ca.pem" }, nil, ""},
		{"anonymous allowed", func(c *Config) { c.AccessKey, c.SecretKey, c.AllowAnonymous = "", "", true }, nil, ""},
		{"empty endpoint", func(c *Config) { c.Endpoint = "" }, ErrInvalidConfig, "endpoint"},
		{"endpoint with path", func(c *Config) { c.Endpoint = "http://h:9000/bucket" }, ErrInvalidConfig, "endpoint"},
		{"endpoint with userinfo", func(c *Config) { c.Endpoint = "http://u:p@h:9000" }, ErrInvalidConfig, "endpoint"},
		{"host:port with userinfo", func(c *Config) { c.Endpoint = "u:p@h:9000" }, ErrInvalidConfig, "endpoint"},
		{"bad scheme", func(c *Config) { c.Endpoint = "ftp://h" }, ErrInvalidConfig, "endpoint"},
		{"empty bucket", func(c *Config) { c.Bucket = "" }, ErrInvalidConfig, "bucket"},
		{"bad bucket", func(c *Config) { c.Bucket = "My_Bucket" }, ErrInvalidConfig, "bucket"},
		{"bucket ending in '-'", func(c *Config) { c.Bucket = "data-" }, ErrInvalidConfig, "bucket"},
		{"negative size", func(c *Config) { c.MaxObjectSize = -1 }, ErrInvalidConfig, "max_object_size"},
		{"negative check timeout", func(c *Config) { c.CheckTimeout = -1 }, ErrInvalidConfig, "check_timeout"},
		{"ca without tls", func(c *Config) { c.CAFile = "/ca.pem" }, ErrInvalidConfig, "ca_file"},
		{"anonymous refused", func(c *Config) { c.AccessKey, c.SecretKey = "", "" }, ErrAnonymous, ""},
		{"half pair", func(c *Config) { c.SecretKey = "" }, ErrInvalidConfig, ""},
		{"secret only", func(c *Config) { c.AccessKey = "" }, ErrInvalidConfig, ""},
		{"token only", func(c *Config) { c.AccessKey, c.SecretKey, c.SessionToken = "", "", "tok" }, ErrInvalidConfig, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
			fe := field.List(err)
			switch {
			case tt.key != "" && (len(fe) != 1 || fe[0].Key != tt.key || !strings.HasPrefix(err.Error(), tt.key+" = ")):
				t.Errorf("Validate() = %v, want one error naming %s", err, tt.key)
			case tt.key == "" && len(fe) != 0:
				t.Errorf("Validate() = %v, want no field error", err)
			}
			if err != nil && strings.Contains(err.Error(), "u:p@") {
				t.Errorf("Validate() = %v repeats the endpoint's credentials", err)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name              string
		base              Config
		env               map[string]string
		wantAK, wantSK    string
		wantTok, wantEndp string
	}{
		{"supflow pair", Config{}, map[string]string{EnvAccessKey: "a", EnvSecretKey: "s", EnvAWSAccessKey: "x", EnvAWSSecretKey: "y", EnvEndpoint: "h:1"}, "a", "s", "", "h:1"},
		{"aws pair with token", Config{}, map[string]string{EnvAWSAccessKey: "x", EnvAWSSecretKey: "y", EnvAWSToken: "t"}, "x", "y", "t", ""},
		{"base wins", Config{AccessKey: "b", SecretKey: "c", Endpoint: "e:2"}, map[string]string{EnvAccessKey: "a", EnvSecretKey: "s", EnvEndpoint: "h:1"}, "b", "c", "", "e:2"},
		{"half supflow pair kept for Validate", Config{}, map[string]string{EnvAccessKey: "a", EnvAWSAccessKey: "x", EnvAWSSecretKey: "y"}, "a", "", "", ""},
		{"nothing", Config{}, nil, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ConfigFromEnv(tt.base, func(k string) string { return tt.env[k] })
			if c.AccessKey != tt.wantAK || c.SecretKey != tt.wantSK || c.SessionToken != tt.wantTok || c.Endpoint != tt.wantEndp {
				t.Fatalf("got ak=%q sk=%q tok=%q endpoint=%q", c.AccessKey, c.SecretKey, c.SessionToken, c.Endpoint)
			}
		})
	}
}

func TestConfigHidesSecrets(t *testing.T) {
	c := Config{Endpoint: "h:9000", Bucket: "data", AccessKey: "AKIDSECRETACCESS", SecretKey: "verysecretkey123", SessionToken: "sessiontoken999"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "store", c)
	for _, out := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logged.String()} {
		for _, secret := range []string{c.AccessKey, c.SecretKey, c.SessionToken} {
			if strings.Contains(out, secret) {
				t.Fatalf("output %q contains a credential", out)
			}
		}
	}
}

func TestNewRejectsBadCAFile(t *testing.T) {
	junk := t.TempDir() + "/junk.pem"
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ca := range []string{t.TempDir() + "/missing.pem", junk} {
		_, err := New(Config{Endpoint: "https://127.0.0.1:9000", Bucket: "data", AccessKey: "a", SecretKey: "s", CAFile: ca})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New with ca_file %s = %v, want ErrInvalidConfig", ca, err)
		}
	}
}
