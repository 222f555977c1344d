package connect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// FuzzAddrs: the addresses Addrs returns from --addr values are the
// values' trimmed, non-empty comma-separated fields, each once, in order.
// Seeds: testdata/fuzz/FuzzAddrs.
func FuzzAddrs(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b string) {
		got := Addrs([]string{a, b}) // values given: BUILDKIT_HOST is not read
		var want []string
		for _, f := range strings.Split(a+","+b, ",") {
			if f = strings.TrimSpace(f); f != "" && !slices.Contains(want, f) {
				want = append(want, f)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Addrs(%q, %q) = %q, want %q", a, b, got, want)
		}
	})
}

// FuzzTLSClientOpts: TLS settings are refused for any address but tcp://,
// and for tcp:// they are accepted exactly when the files are usable (a CA
// certificate, both or neither of a client certificate and its key);
// without settings every address gets no option. Nothing panics. Which
// file each setting names is chosen from a valid one, junk and a missing
// one. Seeds: testdata/fuzz/FuzzTLSClientOpts.
func FuzzTLSClientOpts(f *testing.F) {
	dir := f.TempDir()
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		f.Fatal(err)
	}
	// The certificate is written once per fuzzing process, by its first
	// input's test, into the fuzz target's directory.
	var once sync.Once
	var cert, key string
	// choice: 0 none, 1 valid, 2 junk, 3 missing.
	file := func(choice uint8, valid string) string {
		return []string{"", valid, junk, filepath.Join(dir, "missing")}[choice%4]
	}
	f.Fuzz(func(t *testing.T, addr string, ca, crt, k uint8, serverName string) {
		once.Do(func() { cert, key = writeSelfSigned(t, dir) })
		s := TLS{CACert: file(ca, cert), Cert: file(crt, cert), Key: file(k, key), ServerName: serverName}
		opts, err := s.clientOpts(addr)
		usable := ca%4 <= 1 && crt%4 <= 1 && k%4 <= 1 && (crt%4 == 0) == (k%4 == 0)
		switch {
		case !s.Enabled():
			if err != nil || opts != nil {
				t.Errorf("no TLS, %q: %d options, %v", addr, len(opts), err)
			}
		case !strings.HasPrefix(addr, "tcp://"):
			if err == nil {
				t.Errorf("TLS %+v accepted for %q", s, addr)
			}
		case usable != (err == nil):
			t.Errorf("TLS %+v for %q: %v (usable files: %v)", s, addr, err, usable)
		case err == nil && len(opts) == 0:
			t.Errorf("TLS %+v for %q: no client option", s, addr)
		}
	})
}
