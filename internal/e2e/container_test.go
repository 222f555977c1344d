package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/buildkitimage"
	"github.com/minikit/minikit/internal/connect"
)

// containerRecipes are solved through the buildkitd container: one C and
// one Go row, on different stand-ins.
var containerRecipes = []string{"hello-c.gcc-static.scratch", "hello-go.golang-alpine.scratch"}

// resultRow is the part of `minikit solve --format json` these tests read.
type resultRow struct {
	Name       string `json:"name"`
	Status     string `json:"status"`
	Error      string `json:"error"`
	StandIn    bool   `json:"stand_in"`
	Vertices   int    `json:"vertices"`
	Cached     int    `json:"cached_vertices"`
	Skipped    string `json:"skipped"`
	DurationMS int64  `json:"duration_ms"`
}

func parseRows(t *testing.T, stdout []byte) []resultRow {
	t.Helper()
	var doc struct {
		Recipes []resultRow `json:"recipes"`
	}
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatalf("solve --format json: %v\n%s", err, stdout)
	}
	return doc.Recipes
}

// requireDocker skips without a docker command (or, in CI, fails).
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err == nil {
		if err := exec.Command("docker", "version").Run(); err == nil {
			return
		}
	}
	msg := "end-to-end container test needs a Docker engine (docker version fails)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestContainerDaemon runs buildkitd as a Docker container (the
// minikit/buildkitd image, on the host network so that the stand-in
// registry on loopback is its docker.io mirror) and solves stand-in
// recipes through it over docker-container:// and over tcp:// with mutual
// TLS; tcp without a client certificate is refused.
func TestContainerDaemon(t *testing.T) {
	requireBuildEnv(t)
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	// The stand-in registry comes up with the private daemon.
	if code, _, stderr := minikit(t, ctx, "daemon", "start"); code != 0 {
		t.Fatalf("minikit daemon start exited %d\n%s", code, stderr)
	}
	registry := os.Getenv("MINIKIT_REGISTRY")
	if registry == "" {
		registry = connect.DefaultRegistry
	}
	ref, err := buildkitimage.Ensure(ctx, buildkitimage.Options{Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	certs := writeMTLS(t, dir, "buildkitd")
	config := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(config, []byte(buildkitimage.DefaultConfig+fmt.Sprintf(
		"\n[registry.\"docker.io\"]\n  mirrors = [%q]\n\n[registry.%q]\n  http = true\n", registry, registry)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	name := "minikit-e2e-buildkitd-" + randomHex(t)
	args := append([]string{"run", "-d", "--name", name, "--network", "host"}, privilegeArgs(t, ctx, ref)...)
	args = append(args,
		"-v", config+":"+buildkitimage.ConfigPath+":ro",
		"-v", dir+":/certs:ro",
		ref,
		"--addr", "unix:///run/buildkit/buildkitd.sock",
		"--addr", fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"--tlscacert", "/certs/ca.pem", "--tlscert", "/certs/server.pem", "--tlskey", "/certs/server-key.pem",
	)
	if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "40", name).CombinedOutput()
			t.Logf("docker logs %s:\n%s", name, out)
		}
		if out, err := exec.Command("docker", "rm", "-f", "-v", name).CombinedOutput(); err != nil {
			t.Errorf("docker rm %s: %v\n%s", name, err, out)
		}
	})
	waitContainerDaemon(t, ctx, name)

	solve := func(extra ...string) {
		t.Helper()
		args := append([]string{"solve", "--format", "json", "--progress", "plain"}, extra...)
		code, stdout, stderr := minikit(t, ctx, append(args, containerRecipes...)...)
		if code != 0 {
			t.Fatalf("minikit %v exited %d\n%s\n%s", args, code, stdout, tail(stderr, 3000))
		}
		rows := parseRows(t, stdout)
		if len(rows) != len(containerRecipes) {
			t.Fatalf("%d rows, want %d\n%s", len(rows), len(containerRecipes), stdout)
		}
		for _, r := range rows {
			if r.Status != "ok" || !r.StandIn {
				t.Errorf("%s over %v: want ok on stand-ins, got %+v", r.Name, extra, r)
			}
		}
	}
	t.Run("docker-container", func(t *testing.T) {
		solve("--addr", "docker-container://"+name)
	})
	tcp := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	t.Run("tcp-mtls", func(t *testing.T) {
		solve("--addr", tcp, "--tlscacert", certs.ca, "--tlscert", certs.clientCert, "--tlskey", certs.clientKey, "--tlsservername", "buildkitd")
	})
	t.Run("tcp-mtls-env", func(t *testing.T) {
		t.Setenv("BUILDKIT_HOST", tcp)
		t.Setenv(connect.EnvTLSCACert, certs.ca)
		t.Setenv(connect.EnvTLSCert, certs.clientCert)
		t.Setenv(connect.EnvTLSKey, certs.clientKey)
		t.Setenv(connect.EnvTLSServerName, "buildkitd")
		solve()
	})
	t.Run("tcp-without-client-cert", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--tlscacert", certs.ca, "--tlsservername", "buildkitd"}, "client certificate"},
			{nil, "buildkitd unreachable"},
			{[]string{"--tlscacert", certs.ca, "--tlscert", certs.clientCert}, "--tlskey"},
		} {
			args := append([]string{"solve", "--addr", tcp}, c.args...)
			code, _, stderr := minikit(t, ctx, append(args, containerRecipes[0])...)
			if code != 3 || !strings.Contains(string(stderr), c.want) {
				t.Errorf("minikit %v: exit %d, want 3 with %q in:\n%s", args, code, c.want, tail(stderr, 2000))
			}
		}
	})
}

// privilegeArgs returns docker run's flags for a buildkitd that runs
// containers: --privileged, or, where the engine itself lacks a capability
// (a Docker engine in a container whose bounding set has no
// CAP_SYS_RESOURCE cannot start a --privileged container: "unable to apply
// caps"), every capability it has with confinement off and a writable
// cgroup tree.
func privilegeArgs(t *testing.T, ctx context.Context, ref string) []string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--privileged", "--entrypoint", "buildctl", ref, "--version").CombinedOutput()
	if err == nil {
		return []string{"--privileged"}
	}
	if !strings.Contains(string(out), "apply caps") {
		t.Fatalf("docker run --privileged %s: %v\n%s", ref, err, out)
	}
	t.Logf("this Docker engine cannot start --privileged containers (%s); using every capability but CAP_SYS_RESOURCE instead",
		strings.TrimSpace(firstLineOf(string(out))))
	return []string{"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"--security-opt", "systempaths=unconfined",
		"--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"}
}

// waitContainerDaemon waits until the container's buildkitd answers.
func waitContainerDaemon(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.CommandContext(ctx, "docker", "exec", name, "buildctl", "debug", "workers").CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd in %s does not answer: %v\n%s", name, err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

type mtls struct{ ca, clientCert, clientKey string }

// writeMTLS writes a CA, a server certificate for 127.0.0.1 and
// serverName (ca.pem, server.pem, server-key.pem) and a client
// certificate (client.pem, client-key.pem) into dir.
func writeMTLS(t *testing.T, dir, serverName string) mtls {
	t.Helper()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "minikit e2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	leaf := func(file string, serial int64, usage x509.ExtKeyUsage, dns []string, ips []net.IP) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: file},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: dns, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, file+".pem"), "CERTIFICATE", der)
		writePEM(t, filepath.Join(dir, file+"-key.pem"), "EC PRIVATE KEY", kd)
	}
	leaf("server", 2, x509.ExtKeyUsageServerAuth, []string{serverName}, []net.IP{net.ParseIP("127.0.0.1")})
	leaf("client", 3, x509.ExtKeyUsageClientAuth, nil, nil)
	return mtls{ca: filepath.Join(dir, "ca.pem"), clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem")}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	// Readable by the container's buildkitd (root, but the file is
	// bind-mounted read-only anyway).
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// testLog writes progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
