package pyindex

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// requireTools skips (fails in CI) without the programs a wheel build runs.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not on PATH (scripts/setup installs it)", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// makeDeb builds a .deb of package pkg holding files (path -> content;
// a path ending in .so is compiled from C source, linked with ldflags).
func makeDeb(t *testing.T, dir, pkg, depends string, files map[string]string, ldflags ...string) string {
	t.Helper()
	root := filepath.Join(dir, pkg)
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(p, ".so") && !strings.Contains(filepath.Base(p), ".so.") {
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		src := full + ".c"
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-shared", "-fPIC", "-o", full, src, "-Wl,-soname," + filepath.Base(p)}, ldflags...)
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
		os.Remove(src)
	}
	control := fmt.Sprintf("Package: %s\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: minikit <test@minikit.invalid>\nDescription: test package\n", pkg)
	if depends != "" {
		control += "Depends: " + depends + "\n"
	}
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, pkg+"_1.0-1_amd64.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -b: %v\n%s", err, out)
	}
	return deb
}

// fixture is a tiny Debian world: python3-demo (an extension module
// linked to libdemo1's library, a .dist-info requiring six), libdemo1,
// python3-six (an egg-info) and a base that has only libc.
type fixture struct {
	debs map[string]string
	base string
	// fetched counts the packages asked for.
	fetched int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	requireTools(t, "gcc", "dpkg-deb", "patchelf")
	dir := t.TempDir()
	libDir := filepath.Join(dir, "libdemo1", "usr/lib/x86_64-linux-gnu")
	f := &fixture{debs: map[string]string{}}
	f.debs["libdemo1"] = makeDeb(t, dir, "libdemo1", "libc6 (>= 2.14)", map[string]string{
		"usr/lib/x86_64-linux-gnu/libdemo.so.1": "int demo(void) { return 42; }\n",
	})
	sp := "usr/lib/python3/dist-packages/"
	f.debs["python3-demo"] = makeDeb(t, dir, "python3-demo", "python3:any, libc6 (>= 2.14), libdemo1 | libdemo.so.1", map[string]string{
		sp + "demo/__init__.py":                          "from demo._ext import *\n",
		sp + "demo/_ext.cpython-311-x86_64-linux-gnu.so": "int demo(void);\nint ext(void) { return demo(); }\n",
		sp + "demo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Python: >=3.8\n" +
			"Requires-Dist: six (>=1.5)\nRequires-Dist: pytest ; extra == 'test'\nRequires-Dist: typing-extensions ; python_version < \"3.8\"\n\nThe description.\n",
		sp + "demo-1.0.dist-info/RECORD":        "demo/__init__.py,sha256=stale,1\n",
		sp + "demo-1.0.dist-info/INSTALLER":     "debian\n",
		sp + "demo-1.0.dist-info/top_level.txt": "demo\n",
	}, filepath.Join(libDir, "libdemo.so.1"))
	f.debs["python3-six"] = makeDeb(t, dir, "python3-six", "python3:any", map[string]string{
		sp + "six.py":                          "PY3 = True\n",
		sp + "six-1.16.0.egg-info/PKG-INFO":    "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\n",
		sp + "six-1.16.0.egg-info/SOURCES.txt": "six.py\n",
	})
	f.base = filepath.Join(dir, "base")
	for p, content := range map[string]string{
		"usr/lib/x86_64-linux-gnu/libc.so.6": "",
		"var/lib/dpkg/status":                "Package: libc6\nStatus: install ok installed\n\nPackage: python3\nStatus: install ok installed\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(f.base, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.base, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) config(t *testing.T) Config {
	return Config{
		Roots: []string{"Demo"},
		Base:  Base{ID: "base-1", Rootfs: func(context.Context) (string, error) { return f.base, nil }},
		Fetch: func(_ context.Context, pkgs []string) ([]string, error) {
			var out []string
			for _, p := range pkgs {
				d, ok := f.debs[p]
				if !ok {
					return nil, fmt.Errorf("no package %s", p)
				}
				out = append(out, d)
				f.fetched++
			}
			return out, nil
		},
		Scratch: t.TempDir(),
		Log:     t.Logf,
	}
}

// readWheel returns a wheel's files by name.
func readWheel(t *testing.T, path string) (map[string][]byte, []string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	var order []string
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[zf.Name] = data
		order = append(order, zf.Name)
	}
	return files, order
}

func TestBuildWheelFromDebs(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	projects, err := Build(context.Background(), dir, f.config(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range projects {
		names = append(names, p.File)
		if !p.Rebuilt {
			t.Errorf("%s: not made by the first build", p.File)
		}
	}
	// six is there because demo's Requires-Dist names it; pytest (an
	// extra) and typing-extensions (Python < 3.8) are not.
	if want := []string{"demo-1.0-cp311-cp311-linux_x86_64.whl", "six-1.16.0-py3-none-any.whl"}; !slices.Equal(names, want) {
		t.Fatalf("wheels %v, want %v", names, want)
	}
	files, order := readWheel(t, filepath.Join(dir, wheelDir, projects[0].File))
	for _, want := range []string{
		"demo/__init__.py", "demo/_ext.cpython-311-x86_64-linux-gnu.so", "demo.libs/libdemo.so.1",
		"demo-1.0.dist-info/METADATA", "demo-1.0.dist-info/WHEEL", "demo-1.0.dist-info/RECORD", "demo-1.0.dist-info/top_level.txt",
	} {
		if _, ok := files[want]; !ok {
			t.Errorf("wheel has no %s (has %v)", want, order)
		}
	}
	if _, ok := files["demo-1.0.dist-info/INSTALLER"]; ok {
		t.Error("wheel carries Debian's INSTALLER")
	}
	if order[len(order)-1] != "demo-1.0.dist-info/RECORD" {
		t.Errorf("last entry %s, want the RECORD", order[len(order)-1])
	}
	md := string(files["demo-1.0.dist-info/METADATA"])
	for _, want := range []string{"Name: demo\n", "Requires-Dist: six (>=1.5)\n", "Requires-Dist: pytest ; extra == 'test'\n", "\nThe description.\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("METADATA lacks %q:\n%s", want, md)
		}
	}
	wheel := string(files["demo-1.0.dist-info/WHEEL"])
	if !strings.Contains(wheel, "Tag: cp311-cp311-linux_x86_64\n") || !strings.Contains(wheel, "Root-Is-Purelib: false\n") {
		t.Errorf("WHEEL:\n%s", wheel)
	}
	checkRecord(t, files, "demo-1.0.dist-info/RECORD")

	// The extension module finds the vendored library next to the
	// package; the library itself needs nothing vendored.
	ext := filepath.Join(t.TempDir(), "_ext.so")
	if err := os.WriteFile(ext, files["demo/_ext.cpython-311-x86_64-linux-gnu.so"], 0o644); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(ext)
	if err != nil {
		t.Fatal(err)
	}
	rpath, err := ef.DynString(elf.DT_RPATH)
	ef.Close()
	if err != nil || !slices.Equal(rpath, []string{"$ORIGIN/../demo.libs"}) {
		t.Errorf("extension module RPATH %q (%v), want $ORIGIN/../demo.libs", rpath, err)
	}
	if !slices.Equal(projects[0].Vendored, []string{"libdemo.so.1"}) || !slices.Equal(projects[0].LibDebs, []string{filepath.Base(f.debs["libdemo1"])}) {
		t.Errorf("vendored %v from %v", projects[0].Vendored, projects[0].LibDebs)
	}

	six, _ := readWheel(t, filepath.Join(dir, wheelDir, projects[1].File))
	checkRecord(t, six, "six-1.16.0.dist-info/RECORD")
	if w := string(six["six-1.16.0.dist-info/WHEEL"]); !strings.Contains(w, "Tag: py3-none-any\n") || !strings.Contains(w, "Root-Is-Purelib: true\n") {
		t.Errorf("six WHEEL:\n%s", w)
	}
	if m := string(six["six-1.16.0.dist-info/METADATA"]); !strings.HasPrefix(m, "Metadata-Version: 2.1\n") {
		t.Errorf("six METADATA from PKG-INFO:\n%s", m)
	}
	if _, ok := six["six-1.16.0.dist-info/SOURCES.txt"]; ok {
		t.Error("the egg-info's SOURCES.txt went into the wheel")
	}
}

// checkRecord checks that RECORD lists every other file of the wheel with
// its SHA-256 and size, and itself without.
func checkRecord(t *testing.T, files map[string][]byte, record string) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(files[record])).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", record, err)
	}
	listed := map[string]bool{}
	for _, r := range rows {
		if len(r) != 3 {
			t.Fatalf("%s: row %q", record, r)
		}
		listed[r[0]] = true
		if r[0] == record {
			if r[1] != "" || r[2] != "" {
				t.Errorf("%s lists itself with %q %q", record, r[1], r[2])
			}
			continue
		}
		data, ok := files[r[0]]
		if !ok {
			t.Errorf("%s lists %s, not in the wheel", record, r[0])
			continue
		}
		sum := sha256.Sum256(data)
		if want := "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]); r[1] != want || r[2] != fmt.Sprint(len(data)) {
			t.Errorf("%s: %s %s %s, want %s %d", record, r[0], r[1], r[2], want, len(data))
		}
	}
	for name := range files {
		if !listed[name] {
			t.Errorf("%s does not list %s", record, name)
		}
	}
}

func TestBuildIsIncremental(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	cfg := f.config(t)
	first, err := Build(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range second {
		if p.Rebuilt || p.SHA256 != first[i].SHA256 {
			t.Errorf("%s: rebuilt %v, sha256 %s then %s", p.File, p.Rebuilt, first[i].SHA256, p.SHA256)
		}
	}
	// A damaged wheel is made again; a new base makes every wheel again.
	if err := os.WriteFile(filepath.Join(dir, wheelDir, first[1].File), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	third, err := Build(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if third[0].Rebuilt || !third[1].Rebuilt || third[1].SHA256 != first[1].SHA256 {
		t.Errorf("after damaging %s: rebuilt %v %v, sha256 %s want %s", first[1].File, third[0].Rebuilt, third[1].Rebuilt, third[1].SHA256, first[1].SHA256)
	}
	cfg.Base.ID = "base-2"
	fourth, err := Build(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range fourth {
		if !p.Rebuilt {
			t.Errorf("%s: kept for another base", p.File)
		}
	}
}

func TestBuildFailsOnMissingLibrary(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t)
	// The library package no longer has the library.
	dir := t.TempDir()
	f.debs["libdemo1"] = makeDeb(t, dir, "libdemo1", "", map[string]string{"usr/share/doc/libdemo1/README": "empty\n"})
	_, err := Build(context.Background(), t.TempDir(), cfg)
	if err == nil || !strings.Contains(err.Error(), "needs libdemo.so.1") {
		t.Fatalf("Build without the library: %v, want an error naming libdemo.so.1", err)
	}
}

func TestHandler(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	projects, err := Build(context.Background(), dir, f.config(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(dir))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(method, path string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		// What pip 23 asks for.
		req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, string(body)
	}
	code, h, body := get("GET", "/simple/")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, `<a href="demo/">demo</a>`) || !strings.Contains(body, `<a href="six/">six</a>`) {
		t.Errorf("/simple/: %d %s\n%s", code, h.Get("Content-Type"), body)
	}
	demo := projects[0]
	code, _, body = get("GET", "/simple/demo/")
	wantLink := fmt.Sprintf(`<a href="%s#sha256=%s" data-requires-python="&gt;=3.8">`, demo.File, demo.SHA256)
	if code != 200 || !strings.Contains(body, wantLink) {
		t.Errorf("/simple/demo/: %d, want a link %s\n%s", code, wantLink, body)
	}
	if code, h, _ := get("GET", "/simple/Demo/"); code != http.StatusMovedPermanently || h.Get("Location") != "/simple/demo/" {
		t.Errorf("/simple/Demo/: %d to %q, want a redirect to the normalized name", code, h.Get("Location"))
	}
	want, err := os.ReadFile(filepath.Join(dir, wheelDir, demo.File))
	if err != nil {
		t.Fatal(err)
	}
	if code, _, body := get("GET", "/simple/demo/"+demo.File); code != 200 || body != string(want) {
		t.Errorf("wheel: %d, %d bytes, want the %d bytes of %s", code, len(body), len(want), demo.File)
	}
	for _, p := range []string{"/simple/nosuch/", "/simple/demo/" + projects[1].File, "/simple/demo/../index.json", "/simple/demo/x/y"} {
		if code, _, _ := get("GET", p); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if code, h, _ := get(m, "/simple/demo/"); code != http.StatusMethodNotAllowed || h.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, want 405", m, code)
		}
	}
}
