package store

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by Config.setDefaults.
const (
	DefaultRegion        = "us-east-1"
	DefaultMaxObjectSize = 64 << 20 // 64 MiB: far above any dataset image, small enough to hold in memory
	DefaultRetryFor      = 30 * time.Second
	DefaultCheckTimeout  = 5 * time.Second
)

// Config says where the objects live and how to reach them. The zero value of
// every optional field is a usable default; the credentials are filled by the
// caller (see ConfigFromEnv) and are never printed.
type Config struct {
	// Endpoint is host:port, or a URL http(s)://host:port whose scheme sets Secure.
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the dataset, checkpoints and reports.
	Bucket string `yaml:"bucket"`
	// Region for request signing; default us-east-1 (what MinIO expects).
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
	AllowAnonymous bool `yaml:"allow_anonymous"`

	// MaxObjectSize bounds Get: larger objects are refused before their body
	// is read. Default DefaultMaxObjectSize.
	MaxObjectSize int64 `yaml:"max_object_size"`
	// RetryFor is how long one call keeps retrying transient failures
	// (connection refused, 503, restarting server) before giving up, unless
	// its context ends first. Default DefaultRetryFor; negative disables retries.
	RetryFor time.Duration `yaml:"retry_for"`
	// CheckTimeout bounds the single, unretried request of Check and
	// EnsureBucket so a wrong endpoint fails fast. Default DefaultCheckTimeout.
	CheckTimeout time.Duration `yaml:"check_timeout"`
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
}

// Validate reports the first problem of c, wrapping ErrInvalidConfig or
// ErrAnonymous. It does no I/O.
func (c Config) Validate() error {
	if _, _, err := c.hostAndScheme(); err != nil {
		return err
	}
	if c.Bucket == "" {
		return fmt.Errorf("%w: bucket is empty", ErrInvalidConfig)
	}
	if err := validBucket(c.Bucket); err != nil {
		return err
	}
	if c.MaxObjectSize < 0 {
		return fmt.Errorf("%w: max_object_size %d is negative", ErrInvalidConfig, c.MaxObjectSize)
	}
	if c.CheckTimeout < 0 {
		return fmt.Errorf("%w: check_timeout %s is negative", ErrInvalidConfig, c.CheckTimeout)
	}
	if c.CAFile != "" && !c.secure() {
		return fmt.Errorf("%w: ca_file is set but the endpoint is not HTTPS", ErrInvalidConfig)
	}
	switch {
	case c.AccessKey == "" && c.SecretKey == "":
		if c.SessionToken != "" {
			return fmt.Errorf("%w: session token without access key", ErrInvalidConfig)
		}
		if !c.AllowAnonymous {
			return fmt.Errorf("%w: set SUPFLOW_S3_ACCESS_KEY and SUPFLOW_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", ErrAnonymous)
		}
	case c.AccessKey == "":
		return fmt.Errorf("%w: secret key set without access key", ErrInvalidConfig)
	case c.SecretKey == "":
		return fmt.Errorf("%w: access key set without secret key", ErrInvalidConfig)
	}
	return nil
}

// validBucket applies the S3 naming rules that matter for path-style access.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%w: bucket %q must be 3 to 63 characters", ErrInvalidConfig, b)
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("%w: bucket %q may hold only a-z, 0-9, '-' and '.'", ErrInvalidConfig, b)
		}
	}
	return nil
}

// hostAndScheme splits Endpoint into the host:port minio-go wants and
// whether it is HTTPS.
func (c Config) hostAndScheme() (host string, secure bool, err error) {
	ep := strings.TrimSpace(c.Endpoint)
	if ep == "" {
		return "", false, fmt.Errorf("%w: endpoint is empty", ErrInvalidConfig)
	}
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
		secure = c.Secure
	} else {
		secure = strings.HasPrefix(ep, "https://")
	}
	u, err := url.Parse(ep)
	if err != nil {
		// url.Parse echoes its input, which may hold userinfo: keep it out.
		return "", false, fmt.Errorf("%w: endpoint is not host:port or a URL", ErrInvalidConfig)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("%w: endpoint scheme %q is not http or https", ErrInvalidConfig, u.Scheme)
	case u.User != nil:
		return "", false, fmt.Errorf("%w: endpoint must not carry credentials; use the access key settings", ErrInvalidConfig)
	case u.Host == "":
		return "", false, fmt.Errorf("%w: endpoint has no host", ErrInvalidConfig)
	case u.Path != "" && u.Path != "/", u.RawQuery != "":
		return "", false, fmt.Errorf("%w: endpoint %q must be host:port without a path", ErrInvalidConfig, u.Host)
	}
	return u.Host, secure, nil
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
