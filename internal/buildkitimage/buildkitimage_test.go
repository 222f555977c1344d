package buildkitimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"
)

const repoRoot = "../.."

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffd5b5f2000)
	libseccomp.so.2 => /lib/x86_64-linux-gnu/libseccomp.so.2 (0x00007f1c1a6a0000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1c1a4bf000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f1c1a6e2000)
`
	got, err := parseLdd(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libseccomp.so.2", "/lib64/ld-linux-x86-64.so.2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("parseLdd = %v, want %v", got, want)
	}
	if _, err := parseLdd("\tlibfoo.so.1 => not found\n"); err == nil {
		t.Error("a missing library was not reported")
	}
}

func TestWriteRootfs(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(src, []byte("#!tool"), 0o600); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	files := []File{{Path: "/usr/bin/tool", Source: src, Mode: 0o755}, {Path: "lib64/ld.so", Source: src, Mode: 0o755}}
	if err := WriteRootfs(&a, files); err != nil {
		t.Fatal(err)
	}
	if err := WriteRootfs(&b, files); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same inputs gave different tarballs")
	}
	got := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		data, _ := io.ReadAll(tr)
		contents[h.Name] = string(data)
	}
	for name, mode := range map[string]int64{
		"usr/bin/tool": 0o755, "lib64/ld.so": 0o755, "etc/passwd": 0o644, "etc/group": 0o644,
		"etc/buildkit/buildkitd.toml": 0o644, "tmp/": 0o1777, "var/lib/buildkit/": 0o755, "run/buildkit/": 0o755,
		"usr/": 0o755, "lib64/": 0o755,
	} {
		h, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if h.Mode != mode {
			t.Errorf("%s: mode %o, want %o", name, h.Mode, mode)
		}
	}
	if contents["usr/bin/tool"] != "#!tool" || !strings.HasPrefix(contents["etc/passwd"], "root:x:0:0:") ||
		contents["etc/buildkit/buildkitd.toml"] != DefaultConfig {
		t.Errorf("contents: %q", contents)
	}
	if err := WriteRootfs(io.Discard, []File{{Path: "../escape", Source: src}}); err == nil {
		t.Error("a path outside the root was accepted")
	}
}

// pinnedBuildkit is github.com/moby/buildkit's version in go.mod.
func pinnedBuildkit(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == "github.com/moby/buildkit" {
			return r.Mod.Version
		}
	}
	t.Fatal("go.mod does not require github.com/moby/buildkit")
	return ""
}

// TestWorkflowBuildkitVersion checks that the CI workflow parses and runs
// the official buildkitd image of the BuildKit version go.mod pins, so the
// two cannot drift apart.
func TestWorkflowBuildkitVersion(t *testing.T) {
	want := pinnedBuildkit(t)
	data, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "minikit.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Name string            `yaml:"name"`
		On   yaml.Node         `yaml:"on"`
		Env  map[string]string `yaml:"env"`
		Jobs map[string]struct {
			RunsOn string `yaml:"runs-on"`
			Steps  []struct {
				Name string            `yaml:"name"`
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				Env  map[string]string `yaml:"env"`
				If   string            `yaml:"if"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatalf("minikit.yml: %v", err)
	}
	if wf.Env["BUILDKIT_VERSION"] != want {
		t.Errorf("minikit.yml: BUILDKIT_VERSION is %q, go.mod pins buildkit %s", wf.Env["BUILDKIT_VERSION"], want)
	}
	job, ok := wf.Jobs["solve"]
	if !ok || job.RunsOn == "" {
		t.Fatalf("minikit.yml: no solve job with runs-on")
	}
	image := regexp.MustCompile(`moby/buildkit:(\S+?)["\s]`)
	var runsImage, solves, uploads bool
	for _, s := range job.Steps {
		for _, m := range image.FindAllStringSubmatch(s.Run, -1) {
			runsImage = true
			if tag := m[1]; tag != want && tag != "${BUILDKIT_VERSION}" {
				t.Errorf("step %q runs moby/buildkit:%s, go.mod pins %s", s.Name, tag, want)
			}
		}
		if strings.Contains(s.Run, "bin/minikit solve") {
			solves = true
			if !strings.HasPrefix(s.Env["BUILDKIT_HOST"], "tcp://127.0.0.1:") || s.Env["BUILDKIT_TLS_CERT"] == "" {
				t.Errorf("step %q: want BUILDKIT_HOST on loopback tcp and client certificates, got %v", s.Name, s.Env)
			}
		}
		if strings.HasPrefix(s.Uses, "actions/upload-artifact") && s.If == "always()" {
			uploads = true
		}
	}
	if !runsImage || !solves || !uploads {
		t.Errorf("minikit.yml: runs moby/buildkit %v, solves %v, uploads results always %v", runsImage, solves, uploads)
	}
	if !strings.Contains(wf.Env["MINIKIT_SOLVE_FLAGS"], "--format json") {
		t.Errorf("MINIKIT_SOLVE_FLAGS %q: results.json needs --format json", wf.Env["MINIKIT_SOLVE_FLAGS"])
	}
}

func TestRef(t *testing.T) {
	if got := Ref("v0.34.2"); got != "minikit/buildkitd:v0.34.2" {
		t.Errorf("Ref = %s", got)
	}
}

// A file at the top of the tree needs no parent directory entry.
func TestWriteRootfsTopLevelFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteRootfs(&buf, []File{{Path: "top", Source: src, Mode: 0o755}}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == "top" && h.Mode == 0o755 && h.Size == 1 {
			found = true
		}
	}
	if !found {
		t.Error("top-level file missing from the rootfs")
	}
}
