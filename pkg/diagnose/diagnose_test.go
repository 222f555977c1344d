package diagnose

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Real binaries, compiled once for all tests.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

const helloC = "#include <stdio.h>\nint main(void){puts(\"Hello, world!\");return 0;}\n"
const helloGo = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"Hello, world!\") }\n"

// binaries compiles hello.c dynamically, statically and with an extra
// libgcc_s dependency (as a Rust binary has), and hello.go with cgo off.
func binaries(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcc is needed to build the test binaries")
		}
		t.Skip("no gcc")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "diagnose-bin-")
		if binErr != nil {
			return
		}
		must := func(name string, args ...string) {
			if binErr != nil {
				return
			}
			cmd := exec.Command(name, args...)
			cmd.Dir = binDir
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = &buildError{args: append([]string{name}, args...), out: string(out), err: err}
			}
		}
		if binErr = os.WriteFile(filepath.Join(binDir, "hello.c"), []byte(helloC), 0o644); binErr != nil {
			return
		}
		if binErr = os.WriteFile(filepath.Join(binDir, "hello.go"), []byte(helloGo), 0o644); binErr != nil {
			return
		}
		must("gcc", "-o", "dynamic", "hello.c")
		must("gcc", "-static", "-o", "static", "hello.c")
		must("gcc", "-o", "gccs", "hello.c", "-Wl,--no-as-needed", "-lgcc_s")
		must("go", "build", "-o", "gohello", "hello.go")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

type buildError struct {
	args []string
	out  string
	err  error
}

func (e *buildError) Error() string {
	return strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.out
}

// image is a test image tree: files are copied in, links made.
type image struct {
	t    *testing.T
	root string
}

func newImage(t *testing.T) *image { return &image{t: t, root: t.TempDir()} }

func (im *image) fs() DirFS { return DirFS(im.root) }

func (im *image) file(name, content string, mode os.FileMode) *image {
	im.t.Helper()
	p := filepath.Join(im.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		im.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		im.t.Fatal(err)
	}
	return im
}

func (im *image) copy(name, src string, mode os.FileMode) *image {
	im.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		im.t.Fatal(err)
	}
	return im.file(name, string(data), mode)
}

func (im *image) link(name, target string) *image {
	im.t.Helper()
	p := filepath.Join(im.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		im.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		im.t.Fatal(err)
	}
	return im
}

// glibc lays out a Debian-like glibc runtime, merged-/usr style: /lib is
// a link to usr/lib and the loader is reached through /lib64.
func (im *image) glibc() *image {
	return im.link("lib", "usr/lib").
		file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "loader", 0o755).
		file("usr/lib/x86_64-linux-gnu/libc.so.6", "libc", 0o755).
		link("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
}

var ctx = context.Background()

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func TestParseELF(t *testing.T) {
	dir := binaries(t)
	im := newImage(t).copy("dynamic", filepath.Join(dir, "dynamic"), 0o755).
		copy("static", filepath.Join(dir, "static"), 0o755).
		copy("gohello", filepath.Join(dir, "gohello"), 0o755).
		copy("gccs", filepath.Join(dir, "gccs"), 0o755).
		file("script", "#!/bin/sh\necho hi\n", 0o755)

	b, ok, err := InspectELF(ctx, im.fs(), "/dynamic")
	if err != nil || !ok {
		t.Fatalf("dynamic: %v %v", ok, err)
	}
	if b.Interp != "/lib64/ld-linux-x86-64.so.2" || b.Static() || !contains(b.Needed, "libc.so.6") {
		t.Errorf("dynamic: %+v", b)
	}
	if LoaderKind(b.Interp) != "glibc loader" {
		t.Errorf("loader kind %q", LoaderKind(b.Interp))
	}
	for _, name := range []string{"/static", "/gohello"} {
		b, ok, err := InspectELF(ctx, im.fs(), name)
		if err != nil || !ok || !b.Static() || len(b.Needed) != 0 {
			t.Errorf("%s: want static with no libraries, got %+v %v %v", name, b, ok, err)
		}
	}
	b, _, err = InspectELF(ctx, im.fs(), "/gccs")
	if err != nil || !contains(b.Needed, "libgcc_s.so.1") {
		t.Errorf("gccs: %+v %v", b, err)
	}
	if _, ok, err := InspectELF(ctx, im.fs(), "/script"); ok || err != nil {
		t.Errorf("a script is not ELF: %v %v", ok, err)
	}
	if _, _, err := InspectELF(ctx, im.fs(), "/nope"); err == nil {
		t.Error("a missing file must be an error")
	}
}

func TestMissingLibraries(t *testing.T) {
	dir := binaries(t)
	im := newImage(t).glibc().copy("hello", filepath.Join(dir, "gccs"), 0o755)
	b, _, err := InspectELF(ctx, im.fs(), "/hello")
	if err != nil {
		t.Fatal(err)
	}
	if got := MissingLibraries(ctx, im.fs(), b); len(got) != 1 || got[0] != "libgcc_s.so.1" {
		t.Fatalf("missing %v, want [libgcc_s.so.1]", got)
	}
	// A directory named by an ld.so.conf include holds it.
	im.file("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n", 0o644).
		file("etc/ld.so.conf.d/extra.conf", "# extra\n/opt/lib\n", 0o644).
		file("opt/lib/libgcc_s.so.1", "x", 0o644)
	if got := MissingLibraries(ctx, im.fs(), b); len(got) != 0 {
		t.Fatalf("missing %v after adding /opt/lib through ld.so.conf.d", got)
	}
}

// $ORIGIN in DT_RUNPATH is the binary's own directory, as a jlinked
// runtime's bin/java finds lib/libjli.so.
func TestRunPathOrigin(t *testing.T) {
	im := newImage(t).glibc().file("java/lib/libjli.so", "x", 0o644)
	b := Binary{Interp: "/lib64/ld-linux-x86-64.so.2", Needed: []string{"libjli.so", "libz.so.1"},
		RunPath: []string{"$ORIGIN/../lib", "${ORIGIN}/none", "$PLATFORM/x"}, Path: "/java/bin/java"}
	if got := MissingLibraries(ctx, im.fs(), b); !slices.Equal(got, []string{"libz.so.1"}) {
		t.Errorf("missing %v, want [libz.so.1]", got)
	}
	if got := b.runPath(); !slices.Equal(got, []string{"/java/lib", "/java/bin/none"}) {
		t.Errorf("run path %v", got)
	}
	b.Path = "" // unknown: $ORIGIN cannot be expanded
	if got := MissingLibraries(ctx, im.fs(), b); !slices.Equal(got, []string{"libjli.so", "libz.so.1"}) {
		t.Errorf("without a path: missing %v", got)
	}
}

func TestResolve(t *testing.T) {
	im := newImage(t).glibc().link("loop/a", "b").link("loop/b", "a").link("rel/x", "../usr/lib/x86_64-linux-gnu/libc.so.6")
	p, st, err := Resolve(ctx, im.fs(), "/lib64/ld-linux-x86-64.so.2")
	if err != nil || p != "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" || !st.Mode.IsRegular() {
		t.Errorf("through two links: %q %v %v", p, st, err)
	}
	if p, _, err := Resolve(ctx, im.fs(), "/rel/x"); err != nil || p != "/usr/lib/x86_64-linux-gnu/libc.so.6" {
		t.Errorf("relative link: %q %v", p, err)
	}
	if _, _, err := Resolve(ctx, im.fs(), "/loop/a"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("loop: %v", err)
	}
	// A link to an absolute path stays in the image, whatever the host has.
	im.link("etc/escape", "/../../../../etc/passwd")
	if _, _, err := Resolve(ctx, im.fs(), "/etc/escape"); err == nil {
		t.Error("an absolute link must resolve in the image, not on the host")
	}
}

func TestExplain(t *testing.T) {
	dir := binaries(t)
	limit := 30 * time.Second
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cases := []struct {
		name   string
		image  func() *image
		run    Run
		code   int
		kind   Kind
		reason string
	}{
		{"static on scratch", func() *image { return newImage(t).copy("hello", filepath.Join(dir, "static"), 0o755) },
			Run{Args: []string{"./hello"}, Cwd: "/", Code: 0}, 0, OK, "ok"},
		{"dynamic on scratch: no loader", func() *image { return newImage(t).copy("hello", filepath.Join(dir, "dynamic"), 0o755) },
			Run{Args: []string{"./hello"}, Cwd: "/", Code: 1, Stderr: "exec /hello: no such file or directory\n"},
			127, MissingLoader, "dynamic binary, but the image has no /lib64/ld-linux-x86-64.so.2 (glibc loader)"},
		{"dynamic on musl: no glibc loader", func() *image {
			return newImage(t).file("lib/ld-musl-x86_64.so.1", "musl", 0o755).link("bin/sh", "busybox").file("bin/busybox", "bb", 0o755).
				copy("go/whatsmyip", filepath.Join(dir, "dynamic"), 0o755)
		},
			Run{Args: []string{"./whatsmyip"}, Cwd: "/go", Env: env, Code: 1, Message: `process "./whatsmyip" did not complete successfully: exec /go/whatsmyip: no such file or directory`},
			127, MissingLoader, "no /lib64/ld-linux-x86-64.so.2 (glibc loader)"},
		{"loader there, libgcc_s missing", func() *image { return newImage(t).glibc().copy("hello", filepath.Join(dir, "gccs"), 0o755) },
			Run{Args: []string{"./hello"}, Cwd: "/", Code: 127, Stderr: "./hello: error while loading shared libraries: libgcc_s.so.1: cannot open shared object file: No such file or directory\n"},
			127, MissingLibrary, "shared library libgcc_s.so.1 missing (the image lacks: libgcc_s.so.1, needed by /hello)"},
		{"musl loader, missing library", func() *image { return newImage(t) },
			Run{Args: []string{"/app"}, Code: 127, Stderr: "Error loading shared library libstdc++.so.6: No such file or directory (needed by /app)\n"},
			127, MissingLibrary, "shared library libstdc++.so.6 missing"},
		{"shell form without /bin/sh", func() *image { return newImage(t).copy("go/hello", filepath.Join(dir, "gohello"), 0o755) },
			Run{Args: []string{"/bin/sh", "-c", "./hello"}, Cwd: "/", Code: 1, Stderr: `exec: "/bin/sh": stat /bin/sh: no such file or directory`},
			127, NoShell, "shell-form CMD (./hello) but no /bin/sh in the image"},
		{"executable missing", func() *image { return newImage(t).file("bin/sh", "", 0o755) },
			Run{Args: []string{"hello"}, Env: env, Code: 1, Stderr: `exec: "hello": executable file not found in $PATH`},
			127, NotFound, "hello not found in the image"},
		{"not executable", func() *image { return newImage(t).copy("hello", filepath.Join(dir, "static"), 0o644) },
			Run{Args: []string{"/hello"}, Code: 1, Stderr: `exec: "/hello": permission denied`},
			126, NotExecutable, "/hello is not executable (mode -rw-r--r--)"},
		{"script whose interpreter is missing", func() *image { return newImage(t).file("hello.py", "#!/usr/bin/env python\nprint(1)\n", 0o755) },
			Run{Args: []string{"./hello.py"}, Cwd: "/", Code: 1, Stderr: "exec ./hello.py: no such file or directory"},
			127, MissingInterp, "/hello.py is a script for /usr/bin/env, which is not in the image"},
		{"x509 with no bundle", func() *image { return newImage(t).glibc() },
			Run{Args: []string{"./whatsmyip"}, Code: 1, Stderr: `2026/01/01 00:00:00 Get "https://127.0.0.1:4443/": tls: failed to verify certificate: x509: certificate signed by unknown authority` + "\n"},
			1, UnknownCA, "x509: certificate signed by unknown authority: no CA bundle in the image"},
		{"x509 with a bundle lacking the CA", func() *image { return newImage(t).file("etc/ssl/certs/ca-certificates.crt", "PEM", 0o644) },
			Run{Args: []string{"./whatsmyip"}, Code: 1, Stderr: `x509: certificate signed by unknown authority`},
			1, UnknownCA, "the image's CA bundle (/etc/ssl/certs/ca-certificates.crt) does not hold the server's CA"},
		{"Java class too new", func() *image { return newImage(t) },
			Run{Args: []string{"/bin/sh", "-c", "exec java -cp . hello"}, Code: 1, Stderr: "Error: A JNI error has occurred, please check your installation and try again\n" +
				`Exception in thread "main" java.lang.UnsupportedClassVersionError: hello has been compiled by a more recent version of the Java Runtime (class file version 65.0), this version of the Java Runtime only recognizes class file versions up to 52.0` + "\n\tat java.lang.ClassLoader.defineClass1(Native Method)\n"},
			1, ClassVersion, "class file version 65 is newer than this Java runtime (it reads up to 52, Java 8)"},
		{"offline DNS", func() *image { return newImage(t) },
			Run{Args: []string{"./whatsmyip"}, Code: 1, Stderr: `Get "https://api.ipify.org": dial tcp: lookup api.ipify.org on 127.0.0.53:53: no such host`},
			1, Network, "network unreachable: no such host"},
		{"no route", func() *image { return newImage(t) },
			Run{Args: []string{"./whatsmyip"}, Code: 1, Stderr: `dial tcp 127.0.0.1:4443: connect: network is unreachable`},
			1, Network, "network unreachable: network is unreachable"},
		{"shell cannot find the command", func() *image { return newImage(t).file("bin/sh", "", 0o755) },
			Run{Args: []string{"/bin/sh", "-c", "./pyyaml.py"}, Code: 127, Stderr: "/bin/sh: 1: ./pyyaml.py: not found\n"},
			127, NotFound, "the shell cannot find ./pyyaml.py"},
		{"plain failure", func() *image { return newImage(t) },
			Run{Args: []string{"/x"}, Code: 3, Stderr: "first\nsomething broke\n"},
			3, Exited, "exited with code 3: something broke"},
		{"nothing to run", func() *image { return newImage(t) },
			Run{}, -1, NoCommand, "nothing to run"},
		{"timeout", func() *image { return newImage(t) },
			Run{Args: []string{"/bin/sleep", "1000"}, TimedOut: true, Limit: limit, Code: 137},
			-1, Timeout, "timeout: still running after 30s, killed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Explain(ctx, c.image().fs(), c.run)
			if d.ExitCode != c.code || d.Kind != c.kind || !strings.Contains(d.Reason, c.reason) {
				t.Errorf("got %d %s %q\nwant %d %s containing %q", d.ExitCode, d.Kind, d.Reason, c.code, c.kind, c.reason)
			}
		})
	}
}

func TestParseExecFailure(t *testing.T) {
	for text, want := range map[string]ExecFailure{
		`exec: "./hello": stat ./hello: no such file or directory`:                                                     {"./hello", "no such file or directory"},
		`runc run failed: unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory`: {"/bin/sh", "no such file or directory"},
		`exec: "hello": executable file not found in $PATH`:                                                            {"hello", "executable file not found in $PATH"},
		`exec /hello: no such file or directory`:                                                                       {"/hello", "no such file or directory"},
		`exec /x: exec format error`:                                                                                   {"/x", "exec format error"},
	} {
		got, ok := ParseExecFailure(text)
		if !ok || got != want {
			t.Errorf("%q: got %+v %v, want %+v", text, got, ok, want)
		}
	}
	for _, text := range []string{"", "hello world", "cannot exec the thing", "myexec /x: no such file or directory"} {
		if got, ok := ParseExecFailure(text); ok {
			t.Errorf("%q: no exec failure there, got %+v", text, got)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
