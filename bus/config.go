package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/supflow/supflow/config/field"
)

// Config says how to reach NATS. Its YAML tags are the connection keys of
// pipeline.yaml's bus section (url, creds_file, nkey_file, ca_file,
// cert_file, key_file); the fields tagged "-" are not keys: User, Password
// and Token are secrets, which come from the environment, never from a
// file. Secrets never appear in errors or logs either: Config implements
// slog.LogValuer and fmt.Stringer with them redacted.
type Config struct {
	// URL is nats://host:4222 or tls://host:4222 (ws://, wss://);
	// comma-separated for a cluster.
	URL  string `yaml:"url"`
	Name string `yaml:"-"` // connection name shown in the server's monitoring

	// At most one way to authenticate.
	User      string `yaml:"-"`
	Password  string `yaml:"-"`
	Token     string `yaml:"-"`
	CredsFile string `yaml:"creds_file"` // .creds file: user JWT + nkey seed
	// NKeySeedFile is a file holding an nkey seed (SU...).
	NKeySeedFile string `yaml:"nkey_file"`

	CAFile   string `yaml:"ca_file"`   // CA that signed the server certificate
	CertFile string `yaml:"cert_file"` // client certificate, for mutual TLS ...
	KeyFile  string `yaml:"key_file"`  // ... with its key

	ConnectTimeout time.Duration `yaml:"-"` // per server dial; default 5 s

	// InProcess, when set, is the server every connection reaches in
	// memory instead of dialling URL (StartPrivate sets it for the
	// process's own server): no socket, so none of the kernel's copies of
	// each message (docs/benchmarks.md, "In-process connections"). URL is
	// still checked and named in errors.
	InProcess nats.InProcessConnProvider `yaml:"-"`
}

// Environment variables of the NATS credentials, which never come from a
// file of settings (cmd/supflow also reads each from <NAME>_FILE).
const (
	EnvUser     = "SUPFLOW_NATS_USER"
	EnvPassword = "SUPFLOW_NATS_PASSWORD"
	EnvToken    = "SUPFLOW_NATS_TOKEN"
)

// WithEnv returns c with its user, password and token from getenv (pass
// os.Getenv or a lookup that also reads secret files).
func (c Config) WithEnv(getenv func(string) string) Config {
	c.User, c.Password, c.Token = getenv(EnvUser), getenv(EnvPassword), getenv(EnvToken)
	return c
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("bus: invalid config")

func (c *Config) setDefaults() {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
}

// redacted stands for a secret in an error.
const redacted = "<redacted>"

// Validate reports every problem of c without any I/O, each a *field.Error
// (config/field) named by its key (pipeline.yaml's, or the field's name
// in snake case for those that are not keys) and wrapping ErrConfig. URLs
// appear redacted, secrets not at all. A zero ConnectTimeout stands for its
// default.
func (c Config) Validate() error {
	k := field.NewChecker(ErrConfig)
	if c.URL == "" {
		k.Add("url", `""`, "a nats:// URL (tls:// for TLS; comma-separated for a cluster)")
	}
	for _, s := range strings.Split(c.URL, ",") {
		if c.URL == "" {
			break
		}
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			// url.Parse quotes its input, which may hold a password.
			k.Add("url", "<unparsable>", "nats:// URLs")
			continue
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			k.Add("url", strconv.Quote(redactURL(u)), "nats://, tls://, ws:// or wss:// URLs")
		}
		if u.Host == "" {
			k.Add("url", strconv.Quote(redactURL(u)), "URLs with a host")
		}
		if u.User != nil && c.authMethods() > 0 {
			k.Add("url", strconv.Quote(redactURL(u)), "no credentials in the URL when the config carries some")
		}
	}
	if c.Password != "" && c.User == "" {
		k.Add("password", redacted, "set with user")
	}
	if c.User != "" && c.Password == "" {
		k.Add("user", strconv.Quote(c.User), "set with password")
	}
	// One authentication method: each one after the first is refused.
	n := 0
	for _, m := range []struct {
		key   string
		value any
		set   bool
	}{
		{"user", strconv.Quote(c.User), c.User != "" || c.Password != ""},
		{"token", redacted, c.Token != ""},
		{"nkey_file", strconv.Quote(c.NKeySeedFile), c.NKeySeedFile != ""},
		{"creds_file", strconv.Quote(c.CredsFile), c.CredsFile != ""},
	} {
		if !m.set {
			continue
		}
		if n++; n > 1 {
			k.Add(m.key, m.value, "unset: one authentication method (user/password, token, nkey_file or creds_file)")
		}
	}
	if c.CertFile != "" && c.KeyFile == "" {
		k.Add("key_file", `""`, "the key of cert_file (they go together)")
	}
	if c.KeyFile != "" && c.CertFile == "" {
		k.Add("cert_file", `""`, "the certificate of key_file (they go together)")
	}
	if c.ConnectTimeout < 0 {
		k.Add("connect_timeout", c.ConnectTimeout, "a duration >= 0 (0 = 5s)")
	}
	return k.Err()
}

func (c Config) authMethods() int {
	n := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			n++
		}
	}
	return n
}

// redactedURL returns the URL list with any userinfo password, or token
// (userinfo without a password), hidden.
func (c Config) redactedURL() string {
	parts := strings.Split(c.URL, ",")
	for i, s := range parts {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			parts[i] = "<unparsable>"
			continue
		}
		parts[i] = redactURL(u)
	}
	return strings.Join(parts, ",")
}

// redactURL returns u with its password, or its token (userinfo without a
// password), hidden.
func redactURL(u *url.URL) string {
	if _, hasPassword := u.User.Password(); u.User != nil && !hasPassword {
		v := *u
		v.User = url.User("xxxxx") // a user name alone is a token
		return v.Redacted()
	}
	return u.Redacted()
}

// auth names the authentication method without its secret.
func (c Config) auth() string {
	switch {
	case c.User != "":
		return "user " + c.User
	case c.Token != "":
		return "token"
	case c.NKeySeedFile != "":
		return "nkey " + c.NKeySeedFile
	case c.CredsFile != "":
		return "creds " + c.CredsFile
	}
	for _, s := range strings.Split(c.URL, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			return "credentials in the URL"
		}
	}
	return "none"
}

// String describes c with secrets redacted.
func (c Config) String() string {
	return fmt.Sprintf("nats %s (auth %s, tls ca %q cert %q)", c.redactedURL(), c.auth(), c.CAFile, c.CertFile)
}

// LogValue logs c with secrets redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.redactedURL()),
		slog.String("name", c.Name),
		slog.String("user", c.User),
		slog.Bool("token_set", c.Token != ""),
		slog.String("nkey_seed_file", c.NKeySeedFile),
		slog.String("creds_file", c.CredsFile),
		slog.String("ca_file", c.CAFile),
		slog.String("cert_file", c.CertFile),
	)
}
