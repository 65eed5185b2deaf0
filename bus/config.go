package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config says how to reach NATS. Secrets (Password, Token) never appear in
// errors or logs: Config implements slog.LogValuer and fmt.Stringer with
// them redacted.
type Config struct {
	URL  string // nats://host:4222 or tls://host:4222; comma-separated for a cluster
	Name string // connection name shown in the server's monitoring

	// At most one way to authenticate.
	User         string
	Password     string
	Token        string
	NKeySeedFile string // file holding an nkey seed (SU...)
	CredsFile    string // .creds file: user JWT + nkey seed

	CAFile   string // CA that signed the server certificate
	CertFile string // client certificate, for mutual TLS ...
	KeyFile  string // ... with its key

	ConnectTimeout time.Duration // per server dial; default 5 s
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("bus: invalid config")

func (c *Config) setDefaults() {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
}

// Validate checks the fields without any I/O.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("URL is required"))
	}
	for _, s := range strings.Split(c.URL, ",") {
		if c.URL == "" {
			break
		}
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			// url.Parse quotes its input, which may hold a password.
			errs = append(errs, errors.New("URL does not parse"))
			continue
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			errs = append(errs, fmt.Errorf("URL %s: scheme must be nats, tls, ws or wss", u.Redacted()))
		}
		if u.Host == "" {
			errs = append(errs, fmt.Errorf("URL %s has no host", u.Redacted()))
		}
		if u.User != nil && c.authMethods() > 0 {
			errs = append(errs, fmt.Errorf("URL %s carries credentials and so does the config", u.Redacted()))
		}
	}
	if c.Password != "" && c.User == "" {
		errs = append(errs, errors.New("Password without User"))
	}
	if c.User != "" && c.Password == "" {
		errs = append(errs, errors.New("User without Password"))
	}
	if n := c.authMethods(); n > 1 {
		errs = append(errs, fmt.Errorf("%d authentication methods set; use one of user/password, token, nkey seed, creds file", n))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("CertFile and KeyFile go together"))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("ConnectTimeout %v is negative", c.ConnectTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
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
		if _, hasPassword := u.User.Password(); u.User != nil && !hasPassword {
			u.User = url.User("xxxxx") // a user name alone is a token
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
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
