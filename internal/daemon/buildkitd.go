package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/minikit/minikit/internal/paths"
)

const (
	buildkitModule  = "github.com/moby/buildkit"
	buildkitdPkg    = buildkitModule + "/cmd/buildkitd"
	unknownVersion  = "v0.0.0+unknown" // what buildkitd says when built without -ldflags
	socketName      = "buildkitd.sock"
	traceSocketName = "otel-grpc.sock"
	// maxSocketPath is the longest path a unix socket address can hold on
	// Linux: sun_path is 108 bytes including the terminating NUL.
	maxSocketPath = 107
)

// SocketPath returns where the private buildkitd of home listens:
// home.Socket(), unless that path is too long for a unix socket address, in
// which case it is /run/minikit-<hash of home>/buildkitd.sock (or the same
// under the temporary directory when /run is missing).
func SocketPath(home paths.Home) string {
	return socketPathIn(home, shortRunDir())
}

func socketPathIn(home paths.Home, runDir string) string {
	if s := home.Socket(); len(s) <= maxSocketPath {
		return s
	}
	sum := sha256.Sum256([]byte(home))
	return filepath.Join(runDir, "minikit-"+hex.EncodeToString(sum[:6]), socketName)
}

func shortRunDir() string {
	if fi, err := os.Stat("/run"); err == nil && fi.IsDir() {
		return "/run"
	}
	if d := os.TempDir(); len(d) < 60 {
		return d
	}
	return "/tmp"
}

// bkConfig is what goes into buildkitd.toml.
type bkConfig struct {
	Root        string
	Socket      string
	TraceSocket string
	Mirror      string // host:port of a plain-HTTP mirror of mirroredRegistries, or ""
}

// mirroredRegistries are the registries whose images the stand-in
// registry serves when it is buildkitd's mirror: docker.io for the
// official images, gcr.io for the distroless ones. buildkitd asks the
// mirror for a reference's path without its registry host
// (gcr.io/distroless/static-debian12 is distroless/static-debian12 there).
func mirroredRegistries() []string { return []string{"docker.io", "gcr.io"} }

// render returns the buildkitd.toml text. The OCI (runc) worker is on and
// the containerd worker off, so a Docker engine's containerd on the same
// machine is never touched.
func (c bkConfig) render() string {
	var b strings.Builder
	b.WriteString("# Written by minikit for its private buildkitd; rewritten on every start.\n")
	fmt.Fprintf(&b, "root = %s\n", tomlString(c.Root))
	// minikit test runs the whatsmyip images in gateway containers on the
	// host network, to reach its HTTPS server on loopback; a solve still
	// has to ask for it (SolveOpt.AllowedEntitlements).
	b.WriteString("insecure-entitlements = [\"network.host\"]\n\n")
	fmt.Fprintf(&b, "[grpc]\n  address = [%s]\n\n", tomlString("unix://"+c.Socket))
	// buildkitd's default trace socket (/run/buildkit/otel-grpc.sock) is
	// shared with any other buildkitd on the machine: keep ours private.
	fmt.Fprintf(&b, "[otel]\n  socketPath = %s\n\n", tomlString(c.TraceSocket))
	b.WriteString("[worker.oci]\n  enabled = true\n\n")
	b.WriteString("[worker.containerd]\n  enabled = false\n")
	if c.Mirror != "" {
		for _, host := range mirroredRegistries() {
			fmt.Fprintf(&b, "\n[registry.%s]\n  mirrors = [%s]\n", tomlString(host), tomlString(c.Mirror))
		}
		fmt.Fprintf(&b, "\n[registry.%s]\n  http = true\n", tomlString(c.Mirror))
	}
	return b.String()
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// checkMirror accepts host:port, as buildkitd's registry table expects:
// an IP address or a host name (letters, digits, '-' and '.'), and a port
// number.
func checkMirror(m string) error {
	bad := fmt.Errorf("mirror %q: want host:port of a plain-HTTP registry", m)
	host, port, err := net.SplitHostPort(m)
	if err != nil || host == "" {
		return bad
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return bad
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	for _, c := range []byte(host) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return bad
		}
	}
	return nil
}

// binaryLookup finds buildkitd, in order: the explicit path, next to the
// minikit executable, on PATH, in minikit's bin directory.
type binaryLookup struct {
	Explicit string // Config.Buildkitd
	ExeDir   string // directory of os.Executable()
	PathEnv  string // $PATH
	BinDir   string // Home.Bin()
}

// find returns the path and where it was found; path is "" when there is
// no buildkitd anywhere (it then has to be built into BinDir). An explicit
// path that is not an executable file is an error.
func (l binaryLookup) find() (path, where string, err error) {
	if l.Explicit != "" {
		p, err := filepath.Abs(l.Explicit)
		if err != nil {
			return "", "", fmt.Errorf("buildkitd %s: %w", l.Explicit, err)
		}
		if !isExecutable(p) {
			return "", "", fmt.Errorf("buildkitd %s: not an executable file", p)
		}
		return p, "as configured", nil
	}
	if l.ExeDir != "" {
		if p := filepath.Join(l.ExeDir, "buildkitd"); isExecutable(p) {
			return p, "next to minikit", nil
		}
	}
	for _, dir := range filepath.SplitList(l.PathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never run something from the working directory
		}
		if p := filepath.Join(dir, "buildkitd"); isExecutable(p) {
			return p, "on PATH", nil
		}
	}
	if l.BinDir != "" {
		if p := filepath.Join(l.BinDir, "buildkitd"); isExecutable(p) {
			return p, "in " + l.BinDir, nil
		}
	}
	return "", "", nil
}

// searched describes the places find looked at, for error messages.
func (l binaryLookup) searched() string {
	var s []string
	if l.ExeDir != "" {
		s = append(s, l.ExeDir)
	}
	s = append(s, "$PATH", l.BinDir)
	return strings.Join(s, ", ")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func exeDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(exe)
}

// LibraryVersion returns the github.com/moby/buildkit version this program
// was built with: the version of buildkitd minikit wants. It comes from the
// build information of the binary; test binaries carry none about their
// dependencies, so there (and only when that is missing) it asks
// `go list -m` in the working directory's module.
func LibraryVersion(ctx context.Context) (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := moduleVersion(bi, buildkitModule); v != "" {
			return v, nil
		}
	}
	if goBin, err := exec.LookPath("go"); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}", buildkitModule).Output()
		if v := strings.TrimSpace(string(out)); err == nil && strings.HasPrefix(v, "v") {
			return v, nil
		}
	}
	return "", fmt.Errorf("this binary does not record which %s it was built with", buildkitModule)
}

// moduleVersion returns the version of module path in bi (following a
// replacement by another module version), or "".
func moduleVersion(bi *debug.BuildInfo, path string) string {
	pick := func(m *debug.Module) string {
		if m.Replace != nil {
			m = m.Replace
			if m.Version == "" { // replaced by a directory
				return ""
			}
		}
		if m.Version == "(devel)" {
			return ""
		}
		return m.Version
	}
	if bi.Main.Path == path {
		return pick(&bi.Main)
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return pick(d)
		}
	}
	return ""
}

// parseVersionOutput reads `buildkitd --version` output, e.g.
// "buildkitd github.com/moby/buildkit v0.34.2 4c5d...". ok is false when no
// version is given, including a binary built without version stamping
// (which says v0.0.0+unknown).
func parseVersionOutput(out string) (version string, ok bool) {
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "buildkitd" {
			v := f[2]
			if !strings.HasPrefix(v, "v") || v == unknownVersion {
				return "", false
			}
			return v, true
		}
	}
	return "", false
}

// binaryVersion asks a buildkitd binary its version: `buildkitd --version`,
// else (for a binary built by `go install` without version stamping) the
// module version recorded in the binary.
func binaryVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	if v, ok := parseVersionOutput(string(out)); ok {
		return v, nil
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return unknownVersion, nil
	}
	if v := moduleVersion(bi, buildkitModule); v != "" {
		return v, nil
	}
	return unknownVersion, nil
}

// installBuildkitd builds buildkitd at version into binDir/buildkitd.
//
// `go install github.com/moby/buildkit/cmd/buildkitd@version` is refused
// ("The go.mod file for the module providing named packages contains one or
// more exclude directives"), so this fetches the module from the Go module
// proxy with `go mod download` and builds ./cmd/buildkitd inside it, as its
// own main module: with buildkit's own go.mod and go.sum, as upstream
// builds it. The version is stamped in so `buildkitd --version` tells it.
func installBuildkitd(ctx context.Context, binDir, version string, l binaryLookup) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("%w: buildkitd is not in %s, and minikit builds it with the go command, which is not on PATH: install Go, or put buildkitd %s on PATH, or pass its path explicitly",
			ErrNoGo, l.searched(), version)
	}
	if version == "" {
		return errors.New("buildkitd not found and cannot tell which version to build: pass its path explicitly or put it on PATH")
	}
	if err := os.MkdirAll(binDir, 0o700); err != nil {
		return fmt.Errorf("build buildkitd: %w", err)
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	run := func(dir string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = dir
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, lastLines(stderr.String()+stdout.String(), 20))
		}
		return stdout.Bytes(), nil
	}

	out, err := run(binDir, "mod", "download", "-json", buildkitModule+"@"+version)
	if err != nil {
		return fmt.Errorf("build buildkitd %s: %w", version, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("build buildkitd %s: go mod download gave no source directory (%s)", version, mod.Error)
	}

	tmp := filepath.Join(binDir, ".buildkitd.building")
	if _, err := run(mod.Dir, "build", "-o", tmp,
		"-ldflags=-X "+buildkitModule+"/version.Version="+version,
		"./cmd/buildkitd"); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("build buildkitd %s: %w", version, err)
	}
	if err := os.Rename(tmp, filepath.Join(binDir, "buildkitd")); err != nil {
		return fmt.Errorf("build buildkitd %s: %w", version, err)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
