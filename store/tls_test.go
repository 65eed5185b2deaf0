package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/internal/miniotest"
	"github.com/supflow/supflow/internal/tlstest"
)

func minioTLSBackend(t *testing.T) Config {
	t.Helper()
	s := miniotest.StartTLS(t)
	ak, sk := s.Credentials()
	return Config{Endpoint: s.Endpoint(), Secure: true, CAFile: s.CAFile(), Bucket: "contract", AccessKey: ak, SecretKey: sk}
}

// TestIntegrationContractMinIOTLS runs the contract over HTTPS, trusting
// the server through CAFile.
func TestIntegrationContractMinIOTLS(t *testing.T) { runContract(t, minioTLSBackend) }

// TestIntegrationTLSRefused checks that a server whose certificate the
// client cannot verify is refused at once, with an error that says so and
// never holds the secret key.
func TestIntegrationTLSRefused(t *testing.T) {
	good := minioTLSBackend(t)
	other := tlstest.NewCA(t, "other-ca")
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"CA of another server", func(c *Config) { c.CAFile = other.CertFile }, "certificate signed by unknown authority"},
		{"system roots only", func(c *Config) { c.CAFile = "" }, "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for _, call := range []func(context.Context) error{
				c.Check,
				func(ctx context.Context) error { _, err := c.Get(ctx, "any"); return err },
			} {
				err := call(t.Context())
				if err == nil {
					t.Fatal("succeeded")
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %q, want it to say %q", err, tt.want)
				}
				if strings.Contains(err.Error(), good.SecretKey) {
					t.Errorf("err %q holds the secret key", err)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v to fail: a certificate error must not be retried", d)
			}
		})
	}
	t.Run("plain HTTP to an HTTPS server", func(t *testing.T) {
		cfg := good
		cfg.Secure, cfg.CAFile = false, ""
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "set store.secure: true") {
			t.Fatalf("Check = %v, want a hint at store.secure", err)
		}
	})
	t.Run("HTTPS to a plain HTTP server", func(t *testing.T) {
		plain := miniotest.Start(t)
		ak, sk := plain.Credentials()
		c, err := New(Config{Endpoint: plain.Endpoint(), Secure: true, Bucket: "contract", AccessKey: ak, SecretKey: sk})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := c.Get(t.Context(), "any"); err == nil || !strings.Contains(err.Error(), "HTTP response to HTTPS client") {
			t.Fatalf("Get = %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v to fail: a protocol mismatch must not be retried", d)
		}
	})
	t.Run("CA file without a certificate", func(t *testing.T) {
		cfg := good
		cfg.CAFile = tlstest.NewCA(t, "x").CertFile + ".missing"
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("New = %v, want ErrInvalidConfig", err)
		}
	})
}
