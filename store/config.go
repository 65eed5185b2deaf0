package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/supflow/supflow/config/field"
)

// Defaults applied by Config.setDefaults.
const (
	DefaultRegion        = "us-east-1"
	DefaultMaxObjectSize = 64 << 20 // 64 MiB: far above any dataset image, small enough to hold in memory
	DefaultRetryFor      = 30 * time.Second
	DefaultCheckTimeout  = 5 * time.Second
	DefaultStallTimeout  = 15 * time.Second // under RetryFor, so a stalled read is retried once
)

// Config says where the objects live and how to reach them. Its YAML tags
// are the keys of pipeline.yaml's store section (endpoint, bucket, region,
// secure, ca_file); the fields tagged "-" are not keys: the credentials are
// filled by the caller from the environment (see ConfigFromEnv), never from
// a file, and are never printed. The zero value of every optional field is
// a usable default.
type Config struct {
	// Endpoint is host:port, or a URL http(s)://host:port whose scheme sets Secure.
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the dataset, checkpoints and reports: an S3 bucket name
	// (3-63 lowercase letters, digits, '.' and '-', starting and ending with
	// a letter or digit).
	Bucket string `yaml:"bucket"`
	// Region for request signing; empty means us-east-1 (what MinIO expects).
	Region string `yaml:"region"`
	// Secure selects HTTPS.
	Secure bool `yaml:"secure"`
	// CAFile is a PEM bundle trusted in addition to the system roots (HTTPS only).
	CAFile string `yaml:"ca_file"`

	// AccessKey, SecretKey and SessionToken authenticate every request.
	AccessKey    string `yaml:"-"`
	SecretKey    string `yaml:"-"`
	SessionToken string `yaml:"-"`
	// AllowAnonymous permits running without credentials (public buckets only).
	AllowAnonymous bool `yaml:"-"`

	// MaxObjectSize bounds Get: larger objects are refused before their body
	// is read. Default DefaultMaxObjectSize.
	MaxObjectSize int64 `yaml:"-"`
	// RetryFor is how long one call keeps retrying transient failures
	// (connection refused, 503, restarting server) before giving up, unless
	// its context ends first. Default DefaultRetryFor; negative disables retries.
	RetryFor time.Duration `yaml:"-"`
	// CheckTimeout bounds the single, unretried request of Check and
	// EnsureBucket so a wrong endpoint fails fast. Default DefaultCheckTimeout.
	CheckTimeout time.Duration `yaml:"-"`
	// StallTimeout cuts short an attempt of a read (Get, GetMax, GetRange)
	// that receives nothing, headers or body, for this long; it is retried
	// on a new connection. Default DefaultStallTimeout.
	StallTimeout time.Duration `yaml:"-"`

	// Dialer, when set, makes every connection instead of dialling
	// Endpoint (the embedded endpoint's Config sets it to reach the server
	// in memory: no socket, so none of the kernel's copies of each object;
	// docs/benchmarks.md; with its credentials, GETs then skip the protocol
	// too). Endpoint still signs requests and names errors.
	Dialer Dialer `yaml:"-"`
}

// Dialer makes a Client's connections (Config.Dialer); *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

func (c *Config) setDefaults() {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
	if c.RetryFor == 0 {
		c.RetryFor = DefaultRetryFor
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
}

// bucketRe is the S3 bucket naming rule that matters for path-style access.
var bucketRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// redacted stands for a value that may hold a secret in an error.
const redacted = "<redacted>"

// Validate reports every problem of c: each field out of range as a
// *field.Error (config/field) named by its key and wrapping
// ErrInvalidConfig, then missing or half-set credentials (ErrAnonymous,
// ErrInvalidConfig). An empty Region is its default; a zero MaxObjectSize,
// RetryFor or CheckTimeout, not keys, stand for theirs. It does no I/O and
// never repeats a credential, in the endpoint or elsewhere.
func (c Config) Validate() error {
	k := field.NewChecker(ErrInvalidConfig)
	_, secure := c.endpoint(k)
	if !bucketRe.MatchString(c.Bucket) {
		k.Add("bucket", fmt.Sprintf("%q", c.Bucket), "an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
	}
	if c.CAFile != "" && !secure {
		k.Add("ca_file", fmt.Sprintf("%q", c.CAFile), "empty unless the endpoint is HTTPS (secure: true)")
	}
	if c.MaxObjectSize < 0 {
		k.Add("max_object_size", c.MaxObjectSize, "a size >= 0 (0 = 64 MiB)")
	}
	if c.CheckTimeout < 0 {
		k.Add("check_timeout", c.CheckTimeout, "a duration >= 0 (0 = 5s)")
	}
	return errors.Join(k.Err(), c.validateCredentials())
}

// validateCredentials reports a missing or half-set key pair.
func (c Config) validateCredentials() error {
	switch {
	case c.AccessKey == "" && c.SecretKey == "":
		if c.SessionToken != "" {
			return fmt.Errorf("%w: session token without access key", ErrInvalidConfig)
		}
		if !c.AllowAnonymous {
			return fmt.Errorf("%w: set %s and %s (or %s and %s)", ErrAnonymous, EnvAccessKey, EnvSecretKey, EnvAWSAccessKey, EnvAWSSecretKey)
		}
	case c.AccessKey == "":
		return fmt.Errorf("%w: secret key set without access key", ErrInvalidConfig)
	case c.SecretKey == "":
		return fmt.Errorf("%w: access key set without secret key", ErrInvalidConfig)
	}
	return nil
}

// hostAndScheme splits Endpoint into the host:port minio-go wants and
// whether it is HTTPS.
func (c Config) hostAndScheme() (host string, secure bool, err error) {
	k := field.NewChecker(ErrInvalidConfig)
	host, secure = c.endpoint(k)
	return host, secure, k.Err()
}

// endpoint checks Endpoint into k and returns its host:port and whether it
// is HTTPS (Secure for host:port, the scheme for a URL). An endpoint with
// credentials is reported without its value.
func (c Config) endpoint(k *field.Checker) (host string, secure bool) {
	ep := strings.TrimSpace(c.Endpoint)
	switch {
	case ep == "":
		k.Add("endpoint", `""`, "host:port of the S3 server, or an http(s):// URL")
		return "", false
	case strings.Contains(ep, "@"):
		k.Add("endpoint", redacted, fmt.Sprintf("host:port without credentials (they come from %s / %s)", EnvAccessKey, EnvSecretKey))
		return "", false
	}
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
		secure = c.Secure
	} else {
		secure = strings.HasPrefix(ep, "https://")
	}
	// Without '@' there is no userinfo: the endpoint may be echoed.
	value := fmt.Sprintf("%q", c.Endpoint)
	u, err := url.Parse(ep)
	switch {
	case err != nil:
		k.Add("endpoint", value, "host:port or an http(s):// URL")
	case u.Scheme != "http" && u.Scheme != "https":
		k.Add("endpoint", value, "an http or https URL, or host:port")
	case u.Host == "":
		k.Add("endpoint", value, "host:port (no host)")
	case u.Path != "" && u.Path != "/", u.RawQuery != "":
		k.Add("endpoint", value, "host:port without a path")
	default:
		return u.Host, secure
	}
	return "", secure
}

func (c Config) secure() bool {
	_, s, _ := c.hostAndScheme()
	return s
}

// String describes c without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("store.Config{Endpoint:%s Bucket:%s Region:%s Secure:%t AccessKey:%s SecretKey:%s SessionToken:%s}",
		c.Endpoint, c.Bucket, c.Region, c.secure(), redact(c.AccessKey), redact(c.SecretKey), redact(c.SessionToken))
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from printing the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.String("bucket", c.Bucket),
		slog.String("region", c.Region),
		slog.Bool("secure", c.secure()),
		slog.Bool("credentials", c.AccessKey != ""),
	)
}

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// Environment variables read by ConfigFromEnv.
const (
	EnvEndpoint     = "SUPFLOW_S3_ENDPOINT"
	EnvBucket       = "SUPFLOW_S3_BUCKET"
	EnvRegion       = "SUPFLOW_S3_REGION"
	EnvAccessKey    = "SUPFLOW_S3_ACCESS_KEY"
	EnvSecretKey    = "SUPFLOW_S3_SECRET_KEY"
	EnvSessionToken = "SUPFLOW_S3_SESSION_TOKEN"
	EnvAWSAccessKey = "AWS_ACCESS_KEY_ID"
	EnvAWSSecretKey = "AWS_SECRET_ACCESS_KEY"
	EnvAWSToken     = "AWS_SESSION_TOKEN"
)

// ConfigFromEnv returns base with its empty endpoint, bucket, region and
// credential fields filled from the environment through getenv (pass
// os.Getenv). Credentials come as a pair: the SUPFLOW_S3_* pair wins over the
// AWS_* pair, and a half-set pair is left for Validate to reject. Fields
// already set in base are kept.
func ConfigFromEnv(base Config, getenv func(string) string) Config {
	c := base
	fill := func(dst *string, key string) {
		if *dst == "" {
			*dst = getenv(key)
		}
	}
	fill(&c.Endpoint, EnvEndpoint)
	fill(&c.Bucket, EnvBucket)
	fill(&c.Region, EnvRegion)
	if c.AccessKey != "" || c.SecretKey != "" {
		return c
	}
	if ak, sk := getenv(EnvAccessKey), getenv(EnvSecretKey); ak != "" || sk != "" {
		c.AccessKey, c.SecretKey = ak, sk
		fill(&c.SessionToken, EnvSessionToken)
		return c
	}
	c.AccessKey, c.SecretKey = getenv(EnvAWSAccessKey), getenv(EnvAWSSecretKey)
	if c.AccessKey != "" || c.SecretKey != "" {
		fill(&c.SessionToken, EnvAWSToken)
	}
	return c
}
