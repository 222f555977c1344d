package connect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed certificate and its key.
func writeSelfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestTLSCheck(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		tls TLS
		msg string // "" means valid
	}{
		{TLS{}, ""},
		{TLS{CACert: cert}, ""},
		{TLS{CACert: cert, Cert: cert, Key: key, ServerName: "buildkitd"}, ""},
		{TLS{CACert: missing}, "--tlscacert"},
		{TLS{CACert: junk}, "holds no PEM certificate"},
		{TLS{Cert: cert}, "both"},
		{TLS{Key: key}, "both"},
		{TLS{Cert: missing, Key: key}, "--tlscert"},
		{TLS{Cert: cert, Key: missing}, "--tlskey"},
		{TLS{Cert: cert, Key: junk}, "--tlskey"},
		{TLS{Cert: key, Key: cert}, "--tlscert"},
	} {
		_, err := tc.tls.clientOpts("tcp://127.0.0.1:1234")
		switch {
		case tc.msg == "" && err != nil:
			t.Errorf("%+v: %v", tc.tls, err)
		case tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("%+v: got %v, want an error with %q", tc.tls, err, tc.msg)
		}
		if err != nil && tc.msg == "--tlscacert" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v does not wrap the file error", err)
		}
	}
	if _, err := (TLS{CACert: cert}).clientOpts("unix:///run/buildkit/buildkitd.sock"); err == nil {
		t.Error("TLS settings accepted for a unix socket")
	}
}

func TestTLSWithEnv(t *testing.T) {
	t.Setenv(EnvTLSCACert, "/env/ca.pem")
	t.Setenv(EnvTLSCert, "/env/cert.pem")
	t.Setenv(EnvTLSKey, "/env/key.pem")
	t.Setenv(EnvTLSServerName, "env-name")
	got := TLS{CACert: "/flag/ca.pem"}.WithEnv()
	want := TLS{CACert: "/flag/ca.pem", Cert: "/env/cert.pem", Key: "/env/key.pem", ServerName: "env-name"}
	if got != want {
		t.Errorf("WithEnv = %+v, want %+v", got, want)
	}
}

// TestOpenTLSMissingFile checks that a bad TLS file fails before dialing,
// as an unreachable daemon, naming the flag.
func TestOpenTLSMissingFile(t *testing.T) {
	t.Setenv(EnvTLSCACert, "")
	_, err := Open(context.Background(), Options{Addr: "tcp://127.0.0.1:1", TLS: TLS{CACert: filepath.Join(t.TempDir(), "nope.pem")}})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "--tlscacert") {
		t.Errorf("Open: %v", err)
	}
}

// A daemon that requires client certificates either says so or, when its
// TLS 1.3 alert loses the race with the client's first write, resets the
// connection: both get the client-certificate hint.
func TestExplainMissingClientCert(t *testing.T) {
	tls := TLS{CACert: "ca.pem"}
	for _, msg := range []string{
		"remote error: tls: certificate required",
		"write tcp 127.0.0.1:36198->127.0.0.1:42231: write: connection reset by peer",
	} {
		if got := tls.explain("tcp://127.0.0.1:1", errors.New(msg)); !strings.Contains(got, "client certificate") {
			t.Errorf("%q: hint %q", msg, got)
		}
	}
	if got := (TLS{}).explain("tcp://127.0.0.1:1", errors.New("connection reset by peer")); !strings.Contains(got, "if the daemon uses TLS") {
		t.Errorf("no TLS at all: hint %q", got)
	}
}
