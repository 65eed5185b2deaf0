package config

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestCredentialsInURLsRefused checks that a URL carrying credentials is
// refused, from the file, the environment or --set, and that the error
// does not repeat it.
func TestCredentialsInURLsRefused(t *testing.T) {
	const secret = "pw-Cf9-secret"
	for _, tt := range []struct{ key, value string }{
		{"bus.url", "nats://stage:" + secret + "@nats:4222"},
		{"bus.url", "nats://" + secret + "@nats:4222"},
		{"bus.url", "nats://a:4222,tls://u:" + secret + "@b:4222"},
		{"store.endpoint", "http://ak:" + secret + "@minio:9000"},
		{"store.endpoint", "ak:" + secret + "@minio:9000"},
	} {
		for _, src := range []struct {
			name string
			load func() (*Config, error)
		}{
			{"file", func() (*Config, error) {
				return Load(write(t, strings.Replace(tt.key, ".", ": {", 1)+": "+strconv.Quote(tt.value)+"}\n"), noEnv, nil)
			}},
			{"env", func() (*Config, error) {
				return Load("", func(k string) (string, bool) { return tt.value, k == EnvName(tt.key) }, nil)
			}},
			{"--set", func() (*Config, error) { return Load("", noEnv, []string{tt.key + "=" + tt.value}) }},
		} {
			_, err := src.load()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("%s %s=%s: err = %v, want ErrInvalid naming the key", src.name, tt.key, tt.value, err)
				continue
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s %s: error repeats the secret: %v", src.name, tt.key, err)
			}
		}
	}
}

// TestNoSecretKeys checks that no configuration key can hold a secret:
// what `supflow config` prints is safe to share.
func TestNoSecretKeys(t *testing.T) {
	secretish := regexp.MustCompile(`password|secret|token|access_key`)
	for _, k := range Keys() {
		if secretish.MatchString(k) {
			t.Errorf("key %s looks like it holds a secret", k)
		}
	}
}

// TestRepoPipelineYAMLHoldsNoCredentials checks the committed defaults.
func TestRepoPipelineYAMLHoldsNoCredentials(t *testing.T) {
	c, err := Load("../pipeline.yaml", noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.Bus.URL, "@") || strings.Contains(c.Store.Endpoint, "@") {
		t.Errorf("pipeline.yaml: URL with credentials (bus.url %q, store.endpoint %q)", c.Bus.URL, c.Store.Endpoint)
	}
}
