package connect

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/buildkit/client"
)

// Environment variables that give the TLS settings when the flags do not
// (the flags win, one setting at a time).
const (
	EnvTLSCACert     = "BUILDKIT_TLS_CA_CERT"
	EnvTLSCert       = "BUILDKIT_TLS_CERT"
	EnvTLSKey        = "BUILDKIT_TLS_KEY"
	EnvTLSServerName = "BUILDKIT_TLS_SERVER_NAME"
)

// TLS says how to authenticate a tcp:// daemon and to it, as buildctl's
// --tlscacert, --tlscert, --tlskey and --tlsservername do. The zero value
// is a plain connection.
type TLS struct {
	// CACert is the PEM file of the CA that signed the daemon's
	// certificate. Empty: the system's pool.
	CACert string
	// Cert and Key are the client's certificate and key (PEM), for a
	// daemon that requires them (mutual TLS). Both or neither.
	Cert, Key string
	// ServerName is the name the daemon's certificate must carry. Empty:
	// the address's host.
	ServerName string
}

// Enabled reports whether any TLS setting is given.
func (t TLS) Enabled() bool { return t != TLS{} }

// WithEnv fills the settings t leaves empty from the BUILDKIT_TLS_*
// environment variables.
func (t TLS) WithEnv() TLS {
	for _, f := range []struct {
		v   *string
		env string
	}{{&t.CACert, EnvTLSCACert}, {&t.Cert, EnvTLSCert}, {&t.Key, EnvTLSKey}, {&t.ServerName, EnvTLSServerName}} {
		if *f.v == "" {
			*f.v = os.Getenv(f.env)
		}
	}
	return t
}

// check verifies the files before anything dials: BuildKit's client would
// only fail later, with a less helpful message.
func (t TLS) check() error {
	if (t.Cert == "") != (t.Key == "") {
		return errors.New("TLS: give both a client certificate (--tlscert) and its key (--tlskey), or neither")
	}
	if t.CACert != "" {
		data, err := os.ReadFile(t.CACert)
		if err != nil {
			return fmt.Errorf("TLS CA certificate (--tlscacert): %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(data) {
			return fmt.Errorf("TLS CA certificate (--tlscacert): %s holds no PEM certificate", t.CACert)
		}
	}
	if t.Cert != "" {
		for _, f := range []struct{ flag, path string }{{"--tlscert", t.Cert}, {"--tlskey", t.Key}} {
			data, err := os.ReadFile(f.path)
			if err != nil {
				return fmt.Errorf("TLS client credentials (%s): %w", f.flag, err)
			}
			if b, _ := pem.Decode(data); b == nil {
				return fmt.Errorf("TLS client credentials (%s): %s holds no PEM block", f.flag, f.path)
			}
		}
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			return fmt.Errorf("TLS client credentials (--tlscert %s, --tlskey %s): %w", t.Cert, t.Key, err)
		}
	}
	return nil
}

// clientOpts turns the settings into BuildKit client options for addr.
// Only tcp:// addresses carry TLS; other schemes with TLS settings are an
// error rather than silently unencrypted.
func (t TLS) clientOpts(addr string) ([]client.ClientOpt, error) {
	if !t.Enabled() {
		return nil, nil
	}
	if !strings.HasPrefix(addr, "tcp://") {
		return nil, fmt.Errorf("TLS settings apply to tcp:// addresses only, not %s", addr)
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	var opts []client.ClientOpt
	if t.CACert != "" {
		opts = append(opts, client.WithServerConfig(t.ServerName, t.CACert))
	} else {
		opts = append(opts, client.WithServerConfigSystem(t.ServerName))
	}
	if t.Cert != "" {
		opts = append(opts, client.WithCredentials(t.Cert, t.Key))
	}
	return opts, nil
}

// explain adds a hint to a failure to reach a tcp:// daemon when the
// message shows a TLS mismatch.
func (t TLS) explain(addr string, err error) string {
	if !strings.HasPrefix(addr, "tcp://") {
		return ""
	}
	msg := err.Error()
	switch {
	case !t.Enabled() && (strings.Contains(msg, "server preface") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "EOF") || strings.Contains(msg, "http2")):
		return " (if the daemon uses TLS, give --tlscacert, and --tlscert/--tlskey when it requires client certificates)"
	case t.Cert == "" && (strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") ||
		strings.Contains(msg, "handshake failure") ||
		// With TLS 1.3 the server's alert can lose the race with the
		// client's first write: the client then sees a reset.
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")):
		return " (the daemon requires a client certificate: give --tlscert and --tlskey)"
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate signed by unknown authority"):
		return " (the daemon's certificate does not verify: check --tlscacert and --tlsservername)"
	}
	return ""
}
