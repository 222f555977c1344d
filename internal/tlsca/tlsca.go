// Package tlsca is minikit's test certificate authority: a persistent
// ECDSA CA kept in minikit's home, whose certificate the stand-in base
// images that carry a CA bundle also carry, and an HTTPS server on
// loopback with a certificate it signs. With them the whatsmyip recipes
// make their one HTTPS request offline and still tell "the image trusts
// the bundle" from "the image has no bundle".
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DirName is the CA directory's name under minikit's home.
const DirName = "testca"

// FileName is the file, under the CA directory, holding the CA
// certificate and its private key (PEM, mode 0600).
const FileName = "ca.pem"

// CommonName is the CA certificate's subject common name.
const CommonName = "minikit test CA (offline whatsmyip; not a real authority)"

// A CA signs the loopback server's certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte // the certificate alone, PEM: what goes into CA bundles
	key     *ecdsa.PrivateKey
}

// Fingerprint is the hex SHA-256 of the CA certificate's DER bytes.
func (ca *CA) Fingerprint() string {
	sum := sha256.Sum256(ca.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Pool returns a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// LoadOrCreate returns the CA kept in dir (see FileName), creating dir and
// a new CA (valid 20 years) when there is none. Two processes creating it
// at once end up with the same CA: the file is written under a temporary
// name and linked into place without replacing one already there.
func LoadOrCreate(dir string) (*CA, error) {
	file := filepath.Join(dir, FileName)
	ca, err := Load(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return ca, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	data, err := newCA(time.Now())
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".ca-*.pem")
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("test CA: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	if err := os.Link(tmp.Name(), file); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	return Load(dir)
}

// Load reads the CA kept in dir. A missing file is an fs.ErrNotExist error.
func Load(dir string) (*CA, error) {
	file := filepath.Join(dir, FileName)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	ca, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("test CA %s: %w", file, err)
	}
	return ca, nil
}

func parse(data []byte) (*CA, error) {
	ca := &CA{}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, err
			}
			ca.Cert, ca.CertPEM = c, pem.EncodeToMemory(b)
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			ca.key = k
		}
	}
	if ca.Cert == nil || ca.key == nil {
		return nil, errors.New("want a CERTIFICATE and an EC PRIVATE KEY block")
	}
	if !ca.Cert.IsCA {
		return nil, errors.New("the certificate is not a CA")
	}
	pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(ca.key.Public()) {
		return nil, errors.New("the key does not match the certificate")
	}
	return ca, nil
}

// newCA returns a new CA's certificate and key, PEM-encoded.
func newCA(now time.Time) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CommonName, Organization: []string{"minikit"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...), nil
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// ServerCert issues a certificate for the loopback addresses and
// "localhost", valid for a day, with a fresh key.
func (ca *CA) ServerCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := serialNumber()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"minikit test server"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key}, nil
}
