// Package buildkitimage makes a buildkitd container image without any
// registry: buildkitd and buildctl built from the BuildKit module pinned
// in go.mod (static, CGO_ENABLED=0), the machine's runc with the shared
// libraries it links, a CA bundle, /etc/passwd, /tmp and a buildkitd.toml,
// packed into a root filesystem tarball and `docker import`ed as
// minikit/buildkitd:VERSION with buildkitd as its entrypoint.
//
// Use:
//
//	ref, err := buildkitimage.Ensure(ctx, buildkitimage.Options{Log: os.Stderr})
//	// docker run -d --privileged --network host ref --addr tcp://127.0.0.1:1234 ...
//
// It plays the part of the official moby/buildkit image on a machine that
// reaches no registry; where Docker Hub is reachable (CI), use that one.
package buildkitimage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/minikit/minikit/internal/daemon"
)

// Repository is the image's name; the tag is the BuildKit version.
const Repository = "minikit/buildkitd"

// Labels on the image. FormatLabel changes when what goes into the image
// does, so Ensure rebuilds images made by an older minikit.
const (
	VersionLabel = "org.minikit.buildkit.version"
	FormatLabel  = "org.minikit.buildkitimage.format"
	format       = "1"
)

// ConfigPath is where the image's buildkitd reads its configuration; mount
// another file there to change it (a registry mirror, say).
const ConfigPath = "/etc/buildkit/buildkitd.toml"

// DefaultConfig is the image's buildkitd.toml: the OCI (runc) worker only.
const DefaultConfig = `# minikit/buildkitd: the OCI (runc) worker only.
[worker.oci]
  enabled = true

[worker.containerd]
  enabled = false
`

// Options says how to make the image. The zero value makes the image of
// the BuildKit version minikit is built with, using the go, runc and
// docker commands on PATH.
type Options struct {
	// Version is the BuildKit version (the module's, e.g. v0.34.2).
	// Empty: the one in go.mod.
	Version string
	// ModuleDir is a directory of the Go module that pins BuildKit.
	// Empty: the working directory.
	ModuleDir string
	// Runc is the runc binary to include. Empty: runc on PATH.
	Runc string
	// Docker is the docker command. Empty: docker on PATH.
	Docker string
	// Force rebuilds the image even when it exists.
	Force bool
	// Log receives one-line progress messages.
	Log io.Writer
}

// Ref returns the image reference for a BuildKit version.
func Ref(version string) string { return Repository + ":" + version }

func (o *Options) defaults(ctx context.Context) error {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Docker == "" {
		o.Docker = "docker"
	}
	if o.Version == "" {
		v, err := daemon.LibraryVersion(ctx)
		if err != nil {
			return fmt.Errorf("buildkit version: %w", err)
		}
		o.Version = v
	}
	if o.Runc == "" {
		p, err := exec.LookPath("runc")
		if err != nil {
			return fmt.Errorf("runc for the image: %w (apt-get install runc)", err)
		}
		o.Runc = p
	}
	return nil
}

// Ensure returns the image's reference, making the image unless Docker
// has it already, made by this version of the package (see FormatLabel).
func Ensure(ctx context.Context, o Options) (string, error) {
	if err := o.defaults(ctx); err != nil {
		return "", err
	}
	ref := Ref(o.Version)
	if !o.Force {
		out, err := exec.CommandContext(ctx, o.Docker, "image", "inspect", "--format",
			fmt.Sprintf(`{{index .Config.Labels %q}} {{index .Config.Labels %q}}`, VersionLabel, FormatLabel), ref).Output()
		if err == nil && strings.TrimSpace(string(out)) == o.Version+" "+format {
			return ref, nil
		}
	}
	if err := build(ctx, o, ref); err != nil {
		return "", fmt.Errorf("make image %s: %w", ref, err)
	}
	return ref, nil
}

func build(ctx context.Context, o Options, ref string) error {
	tmp, err := os.MkdirTemp("", "minikit-buildkitimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	fmt.Fprintf(o.Log, "building buildkitd and buildctl %s (static) ...\n", o.Version)
	for _, cmd := range []string{"buildkitd", "buildctl"} {
		if err := goBuild(ctx, o, cmd, filepath.Join(tmp, cmd)); err != nil {
			return err
		}
	}
	libs, err := sharedLibraries(ctx, o.Runc)
	if err != nil {
		return err
	}
	files := []File{
		{Path: "usr/bin/buildkitd", Source: filepath.Join(tmp, "buildkitd"), Mode: 0o755},
		{Path: "usr/bin/buildctl", Source: filepath.Join(tmp, "buildctl"), Mode: 0o755},
		{Path: "usr/bin/runc", Source: o.Runc, Mode: 0o755},
	}
	for _, l := range libs {
		files = append(files, File{Path: strings.TrimPrefix(l, "/"), Source: l, Mode: 0o755})
	}
	// The CA bundle, for pulling from real registries over HTTPS.
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		files = append(files, File{Path: "etc/ssl/certs/ca-certificates.crt", Source: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644})
	}

	rootfs := filepath.Join(tmp, "rootfs.tar")
	f, err := os.Create(rootfs)
	if err != nil {
		return err
	}
	werr := WriteRootfs(f, files)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("root filesystem: %w", err)
	}

	fmt.Fprintf(o.Log, "importing %s into docker ...\n", ref)
	in, err := os.Open(rootfs)
	if err != nil {
		return err
	}
	defer in.Close()
	args := []string{"import"}
	for _, c := range changes(o.Version) {
		args = append(args, "--change", c)
	}
	args = append(args, "-", ref)
	cmd := exec.CommandContext(ctx, o.Docker, args...)
	cmd.Stdin = in
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker import: %w\n%s", err, out.String())
	}
	fmt.Fprintf(o.Log, "%s ready (%.0fs)\n", ref, time.Since(start).Seconds())
	return nil
}

// changes are the Dockerfile instructions docker import applies: what the
// official image sets (entrypoint, volume) and minikit's labels.
func changes(version string) []string {
	return []string{
		`ENTRYPOINT ["buildkitd"]`,
		`ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
		`VOLUME /var/lib/buildkit`,
		fmt.Sprintf("LABEL %s=%s %s=%s", VersionLabel, version, FormatLabel, format),
	}
}

// goBuild builds a BuildKit command, static, from the module that pins it.
func goBuild(ctx context.Context, o Options, cmdName, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out,
		"-ldflags=-s -w -X github.com/moby/buildkit/version.Version="+o.Version,
		"github.com/moby/buildkit/cmd/"+cmdName)
	cmd.Dir = o.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", cmdName, err, stderr.String())
	}
	return nil
}

// sharedLibraries lists the files a dynamic executable loads (its
// interpreter included), as ldd reports them; none for a static one.
func sharedLibraries(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w\n%s", bin, err, out)
	}
	return parseLdd(string(out))
}

// parseLdd reads ldd's output: "libc.so.6 => /lib/.../libc.so.6 (0x...)"
// and "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no file.
func parseLdd(out string) ([]string, error) {
	var libs []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "linux-vdso") || strings.HasPrefix(line, "linux-gate") {
			continue
		}
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd: %s", line)
		}
		path := line
		if _, after, ok := strings.Cut(line, "=>"); ok {
			path = strings.TrimSpace(after)
		}
		path, _, _ = strings.Cut(path, " (")
		if !strings.HasPrefix(path, "/") {
			continue
		}
		libs = append(libs, path)
	}
	sort.Strings(libs)
	return libs, nil
}

// A File goes into the root filesystem at Path (relative), with the
// content of Source (symbolic links followed).
type File struct {
	Path   string
	Source string
	Mode   int64
}

// WriteRootfs writes the image's root filesystem as a tar stream: files,
// the directories they need, the skeleton (/etc/passwd, /etc/group, /tmp,
// /var/lib/buildkit, /run/buildkit, /root) and DefaultConfig. Entries are
// sorted and dated the Unix epoch, so the same inputs give the same bytes.
func WriteRootfs(w io.Writer, files []File) error {
	type entry struct {
		hdr  tar.Header
		data []byte
		src  string
	}
	entries := map[string]*entry{}
	dir := func(p string, mode int64) {
		if p == "." || p == "/" {
			return // the root: no entry
		}
		for d := p; d != "." && d != "/"; d = filepath.Dir(d) {
			if _, ok := entries[d+"/"]; !ok {
				entries[d+"/"] = &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}}
			}
		}
		entries[p+"/"].hdr.Mode = mode
	}
	file := func(p string, mode int64, data []byte, src string) {
		dir(filepath.Dir(p), 0o755)
		entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode}, data: data, src: src}
	}
	for _, d := range []string{"etc/buildkit", "var/lib/buildkit", "run/buildkit", "usr/bin", "usr/sbin", "proc", "sys", "dev"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	dir("var/tmp", 0o1777)
	dir("root", 0o700)
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"), "")
	file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"), "")
	file(strings.TrimPrefix(ConfigPath, "/"), 0o644, []byte(DefaultConfig), "")
	for _, f := range files {
		p := filepath.Clean(strings.TrimPrefix(f.Path, "/"))
		if p == "." || strings.HasPrefix(p, "..") {
			return fmt.Errorf("rootfs: bad path %q", f.Path)
		}
		file(p, f.Mode, nil, f.Source)
	}

	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime = time.Unix(0, 0)
		e.hdr.Format = tar.FormatPAX
		if e.src != "" {
			data, err := os.ReadFile(e.src)
			if err != nil {
				return fmt.Errorf("rootfs: %w", err)
			}
			e.data = data
		}
		if e.hdr.Typeflag == tar.TypeReg {
			e.hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return fmt.Errorf("rootfs: %s: %w", n, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("rootfs: %s: %w", n, err)
		}
	}
	return tw.Close()
}
