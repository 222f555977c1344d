package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	bk := func(v string, r *debug.Module) []*debug.Module {
		return []*debug.Module{{Path: "golang.org/x/sys", Version: "v0.1.0"}, {Path: buildkitModule, Version: v, Replace: r}}
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want versionInfo
		line string
	}{{
		name: "release",
		bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/minikit/minikit", Version: "v1.2.3"}, Deps: bk("v0.34.2", nil)},
		ok:   true,
		want: versionInfo{Version: "v1.2.3", BuildKit: "v0.34.2", Go: "go1.26.8"},
		line: "v1.2.3",
	}, {
		name: "checkout",
		bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Deps: bk("v0.34.2", nil), Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "5c47a90a1b2c3d4e"}, {Key: "vcs.time", Value: "2026-11-27T12:42:36Z"}, {Key: "vcs.modified", Value: "true"},
		}},
		ok:   true,
		want: versionInfo{Version: "devel", Revision: "5c47a90a1b2c3d4e", Time: "2026-11-27T12:42:36Z", Modified: true, BuildKit: "v0.34.2", Go: "go1.26.8"},
		line: "devel (revision 5c47a90a1b2c3d4e, 2026-11-27T12:42:36Z, modified)",
	}, {
		name: "replaced by a version",
		bi:   &debug.BuildInfo{Deps: bk("v0.34.2", &debug.Module{Path: "example.com/fork/buildkit", Version: "v0.35.0"})},
		ok:   true,
		want: versionInfo{Version: "devel", BuildKit: "v0.35.0 (example.com/fork/buildkit)", Go: runtime.Version()},
		line: "devel",
	}, {
		name: "replaced by a directory",
		bi:   &debug.BuildInfo{Deps: bk("v0.34.2", &debug.Module{Path: "../buildkit"})},
		ok:   true,
		want: versionInfo{Version: "devel", BuildKit: "v0.34.2 (replaced by ../buildkit)", Go: runtime.Version()},
		line: "devel",
	}, {
		name: "no buildkit",
		bi:   &debug.BuildInfo{Main: debug.Module{Version: ""}},
		ok:   true,
		want: versionInfo{Version: "devel", BuildKit: "unknown", Go: runtime.Version()},
		line: "devel",
	}, {
		name: "no build info",
		want: versionInfo{Version: "devel", BuildKit: "unknown", Go: runtime.Version()},
		line: "devel",
	}} {
		tc.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
		got := versionOf(tc.bi, tc.ok)
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if l := got.minikitLine(); l != tc.line {
			t.Errorf("%s: line %q, want %q", tc.name, l, tc.line)
		}
	}
}

// pinnedBuildKit reads the BuildKit version go.mod requires.
func pinnedBuildKit(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == buildkitModule && strings.HasPrefix(fields[1], "v") {
			return fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("go.mod requires no %s", buildkitModule)
	return ""
}

// minikit version and --version print the BuildKit go.mod pins (this test
// binary is built with it, as minikit is), minikit's version and Go's.
func TestVersionCommand(t *testing.T) {
	pinned := pinnedBuildKit(t)
	code, out, errOut := run(t, "version")
	if code != exitOK || errOut != "" {
		t.Fatalf("version: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "minikit ") || strings.Fields(lines[1])[0] != "buildkit" || strings.Fields(lines[1])[1] != pinned {
		t.Errorf("version printed:\n%s\nwant minikit, buildkit %s, go lines", out, pinned)
	}
	if !strings.Contains(lines[2], runtime.Version()) {
		t.Errorf("go line %q lacks %s", lines[2], runtime.Version())
	}
	if _, alias, _ := run(t, "--version"); alias != out {
		t.Errorf("--version differs from version:\n%s", alias)
	}
	code, out, _ = run(t, "version", "--format", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil {
		t.Fatalf("version --format json: exit %d, %v:\n%s", code, err, out)
	}
	if v.BuildKit != pinned || v.Version == "" || v.Go != runtime.Version() {
		t.Errorf("version JSON %+v, want buildkit %s", v, pinned)
	}
	for _, args := range [][]string{{"version", "--format", "xml"}, {"version", "extra"}} {
		if code, _, _ := run(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
