package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/supflow/supflow/internal/tlstest"
)

// These tests run a real nats-server on 127.0.0.1 with each way of
// authenticating the bus supports, and with TLS from a CA made in the test.

// startSecured starts a JetStream server with opts' authentication and TLS
// settings and returns its host:port.
func startSecured(t *testing.T, opts *server.Options) string {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv.Addr().String()
}

// roundTrip provisions a work queue and sends one message through it over
// the router, whose subscriber dials a connection of its own.
func roundTrip(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Name = t.Name()
	b, err := Connect(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	provision(t, b, edge("secured", "reader"))
	col := newCollector()
	runRouter(t, b, quick, col.route("reader", "secured"))
	sendAll(t, b, "secured", "hello")
	if got := col.wait(t, 1); len(got) != 1 || got[0] != "hello" {
		t.Fatalf("got %v", got)
	}
}

// refused checks that Connect fails within 5 s, with ErrConnect, an error
// containing want, and none of the secrets.
func refused(t *testing.T, cfg Config, want string, secrets ...string) {
	t.Helper()
	start := time.Now()
	b, err := Connect(context.Background(), cfg, nil)
	if err == nil {
		b.Close()
		t.Fatal("connected")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to fail", d)
	}
	t.Logf("refused in %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, ErrConnect) {
		t.Errorf("err = %v, want ErrConnect", err)
	}
	if !strings.Contains(strings.ToLower(err.Error()), want) {
		t.Errorf("err = %q, want it to say %q", err, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("err %q contains the secret %q", err, s)
		}
	}
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecuredUserPassword(t *testing.T) {
	const user, pass = "stage", "pw-Zq81-user-secret"
	url := "nats://" + startSecured(t, &server.Options{Username: user, Password: pass})
	roundTrip(t, Config{URL: url, User: user, Password: pass})
	t.Run("wrong password", func(t *testing.T) {
		refused(t, Config{URL: url, User: user, Password: "pw-wrong-Zq81"}, "authorization violation", "pw-wrong-Zq81", pass)
	})
	t.Run("missing", func(t *testing.T) {
		refused(t, Config{URL: url}, "authorization violation")
	})
	t.Run("in the URL", func(t *testing.T) {
		refused(t, Config{URL: "nats://" + user + ":pw-wrong-Zq81@" + strings.TrimPrefix(url, "nats://")}, "authorization violation", "pw-wrong-Zq81")
	})
}

func TestSecuredToken(t *testing.T) {
	const token = "tok-Yb52-secret"
	url := "nats://" + startSecured(t, &server.Options{Authorization: token})
	roundTrip(t, Config{URL: url, Token: token})
	t.Run("wrong token", func(t *testing.T) {
		refused(t, Config{URL: url, Token: "tok-wrong-Yb52"}, "authorization violation", "tok-wrong-Yb52", token)
	})
	t.Run("wrong token in the URL", func(t *testing.T) {
		refused(t, Config{URL: "nats://tok-wrong-Yb52@" + strings.TrimPrefix(url, "nats://")}, "authorization violation", "tok-wrong-Yb52")
	})
}

func TestConfigRedactsURLCredentials(t *testing.T) {
	c := Config{URL: "nats://tok-Ur7-secret@a:4222,nats://u:pw-Ur7-secret@b:4222"}
	for _, s := range []string{c.String(), fmt.Sprint(c.LogValue())} {
		if strings.Contains(s, "Ur7") {
			t.Errorf("secret in %q", s)
		}
		if !strings.Contains(s, "a:4222") || !strings.Contains(s, "u:") {
			t.Errorf("%q lost the hosts or the user name", s)
		}
	}
}

func TestSecuredNKey(t *testing.T) {
	seedFile := func(kp nkeys.KeyPair) (path, seed string) {
		s, err := kp.Seed()
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, "user.nk", s), string(s)
	}
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	url := "nats://" + startSecured(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	path, _ := seedFile(user)
	roundTrip(t, Config{URL: url, NKeySeedFile: path})
	t.Run("unknown key", func(t *testing.T) {
		other, _ := nkeys.CreateUser()
		path, seed := seedFile(other)
		refused(t, Config{URL: url, NKeySeedFile: path}, "authorization violation", seed)
	})
	t.Run("not a seed", func(t *testing.T) {
		refused(t, Config{URL: url, NKeySeedFile: writeFile(t, "bad.nk", []byte("not-a-seed-Kx7"))}, "nkey seed file", "not-a-seed-Kx7")
	})
}

// operator is a NATS operator with an account that may use JetStream, in
// the decentralized JWT mode that .creds files belong to.
type operator struct {
	claims  *jwt.OperatorClaims
	account nkeys.KeyPair
	opts    *server.Options
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	resolver := &server.MemAccResolver{}
	addAccount := func(limits bool) (nkeys.KeyPair, string) {
		akp, _ := nkeys.CreateAccount()
		apub, _ := akp.PublicKey()
		ac := jwt.NewAccountClaims(apub)
		if limits {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		enc, err := ac.Encode(okp)
		if err != nil {
			t.Fatal(err)
		}
		if err := resolver.Store(apub, enc); err != nil {
			t.Fatal(err)
		}
		return akp, apub
	}
	_, sys := addAccount(false)
	oc.SystemAccount = sys
	acc, _ := addAccount(true)
	return &operator{claims: oc, account: acc, opts: &server.Options{
		TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver, SystemAccount: sys}}
}

// creds writes a .creds file for a new user of account and returns its path
// and the user's seed.
func creds(t *testing.T, account nkeys.KeyPair) (path, seed string) {
	t.Helper()
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	s, _ := ukp.Seed()
	enc, err := jwt.NewUserClaims(upub).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwt.FormatUserConfig(enc, s)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "user.creds", b), string(s)
}

func TestSecuredCreds(t *testing.T) {
	op := newOperator(t)
	url := "nats://" + startSecured(t, op.opts)
	path, _ := creds(t, op.account)
	roundTrip(t, Config{URL: url, CredsFile: path})
	t.Run("account unknown to the operator", func(t *testing.T) {
		stranger, _ := nkeys.CreateAccount()
		path, seed := creds(t, stranger)
		refused(t, Config{URL: url, CredsFile: path}, "authorization violation", seed)
	})
	t.Run("missing", func(t *testing.T) {
		refused(t, Config{URL: url}, "authorization violation")
	})
}

func TestSecuredTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	srvCert := ca.Issue(t, "nats", "127.0.0.1")
	client := ca.Issue(t, "client")
	other := tlstest.NewCA(t, "other-ca")
	start := func(t *testing.T, verify bool) string {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, CaFile: ca.CertFile, Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		return "tls://" + startSecured(t, &server.Options{TLS: true, TLSVerify: verify, TLSConfig: tc, TLSTimeout: 2,
			Username: "stage", Password: "pw-Tl55-secret"})
	}
	t.Run("server TLS", func(t *testing.T) {
		url := start(t, false)
		roundTrip(t, Config{URL: url, CAFile: ca.CertFile, User: "stage", Password: "pw-Tl55-secret"})
		refused(t, Config{URL: url, CAFile: other.CertFile, User: "stage", Password: "pw-Tl55-secret"}, "certificate", "pw-Tl55-secret")
		refused(t, Config{URL: url, User: "stage", Password: "pw-Tl55-secret"}, "certificate", "pw-Tl55-secret")
		refused(t, Config{URL: url, CAFile: filepath.Join(t.TempDir(), "missing.pem")}, "missing.pem")
	})
	t.Run("mutual TLS", func(t *testing.T) {
		url := start(t, true)
		roundTrip(t, Config{URL: url, CAFile: ca.CertFile, CertFile: client.CertFile, KeyFile: client.KeyFile,
			User: "stage", Password: "pw-Tl55-secret"})
		refused(t, Config{URL: url, CAFile: ca.CertFile, User: "stage", Password: "pw-Tl55-secret"}, "certificate", "pw-Tl55-secret")
	})
}
