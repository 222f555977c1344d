package diagnose

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// classFile is the start of a class file of the given version.
func classFile(major, minor uint16) string {
	return string([]byte{0xCA, 0xFE, 0xBA, 0xBE, byte(minor >> 8), byte(minor), byte(major >> 8), byte(major), 0x00, 0x10})
}

// jre8 lays out a Debian-style JRE 8 reached through Temurin's
// /opt/java/openjdk, with /bin/sh; release is its release file ("": none).
func (im *image) jre8(release string) *image { return im.jre8Launcher(release, "\x7fELF") }

// jre8Launcher is jre8 with the java executable's contents.
func (im *image) jre8Launcher(release, launcher string) *image {
	im.glibc().file("bin/sh", "sh", 0o755).
		file("usr/lib/jvm/java-8-openjdk-amd64/jre/bin/java", launcher, 0o755).
		link("opt/java/openjdk", "/usr/lib/jvm/java-8-openjdk-amd64/jre").
		link("usr/bin/java", "/etc/alternatives/java").
		link("etc/alternatives/java", "/usr/lib/jvm/java-8-openjdk-amd64/jre/bin/java")
	if release != "" {
		im.file("usr/lib/jvm/java-8-openjdk-amd64/jre/release", release, 0o644)
	}
	return im
}

// launcher8 is the part of Debian's Java 8 launcher holding its version.
const launcher8 = "\x7fELF\x00\x00-version\x00%s\x001.8.0_504-8u504-ga-1-b01\x00java\x00"

// followFS is an FS that follows symbolic links (inside the image) in
// every name, as BuildKit's StatFile does: no link is ever seen as one.
type followFS struct{ DirFS }

func (f followFS) Lstat(ctx context.Context, name string) (Stat, error) {
	_, st, err := Resolve(ctx, f.DirFS, name)
	return st, err
}

func (f followFS) ReadFile(ctx context.Context, name string, off, length int64) ([]byte, error) {
	real, _, err := Resolve(ctx, f.DirFS, name)
	if err != nil {
		return nil, err
	}
	return f.DirFS.ReadFile(ctx, real, off, length)
}

var (
	temurinEnv = []string{"JAVA_HOME=/opt/java/openjdk", "PATH=/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	javaCmd    = []string{"/bin/sh", "-c", "exec java -cp . hello"}
	tooNew     = `Exception in thread "main" java.lang.UnsupportedClassVersionError: hello has been compiled by a more recent version of the Java Runtime (class file version 65.0), this version of the Java Runtime only recognizes class file versions up to 52.0`
)

func TestReadClassVersion(t *testing.T) {
	im := newImage(t).file("hello.class", classFile(65, 0), 0o644).file("a/B.class", classFile(52, 3), 0o644).
		file("hello.java", "class hello {}", 0o644).file("short.class", "\xca\xfe", 0o644)
	for name, want := range map[string]ClassFileVersion{"/hello.class": {65, 0}, "/a/B.class": {52, 3}} {
		got, err := ReadClassVersion(ctx, im.fs(), name)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", name, got, err, want)
		}
	}
	if v := (ClassFileVersion{Major: 65}); v.String() != "65.0" || v.Java() != 21 {
		t.Errorf("65.0: %s, Java %d", v, v.Java())
	}
	for _, name := range []string{"/hello.java", "/short.class"} {
		if _, err := ReadClassVersion(ctx, im.fs(), name); !errors.Is(err, errNotClass) {
			t.Errorf("%s: %v, want errNotClass", name, err)
		}
	}
	if _, err := ReadClassVersion(ctx, im.fs(), "/nope.class"); !errors.Is(err, ErrNotExist) {
		t.Errorf("missing: %v, want ErrNotExist", err)
	}
}

func TestFindJavaRuntime(t *testing.T) {
	cases := []struct {
		name    string
		image   *image
		feature int
		version string
	}{
		{"release file", newImage(t).jre8("IMPLEMENTOR=\"Debian\"\nJAVA_VERSION=\"1.8.0_462\"\n"), 8, "1.8.0_462"},
		{"home's name only", newImage(t).jre8(""), 8, ""},
		{"launcher's version string", newImage(t).jre8Launcher("", launcher8), 8, "1.8.0_504-8u504-ga-1-b01"},
		{"Java 17 launcher", newImage(t).file("usr/lib/jvm/j/bin/java", "\x00GLIBC_2.2.5\x0017.0.15+6-Debian-1deb12u1\x00", 0o755).link("opt/java/openjdk", "/usr/lib/jvm/j"), 17, "17.0.15+6-Debian-1deb12u1"},
		{"Java 21 release", newImage(t).file("usr/lib/jvm/x/bin/java", "java", 0o755).link("opt/java/openjdk", "/usr/lib/jvm/x").
			file("usr/lib/jvm/x/release", "JAVA_VERSION=\"21.0.5\"\n", 0o644), 21, "21.0.5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j, err := FindJavaRuntime(ctx, c.image.fs(), "java", temurinEnv, "/")
			if err != nil || j.Feature != c.feature || j.Version != c.version {
				t.Fatalf("got %+v %v, want Java %d %q", j, err, c.feature, c.version)
			}
			if want := uint16(c.feature + 44); j.MaxClass().Major != want {
				t.Errorf("max class %s, want %d.0", j.MaxClass(), want)
			}
		})
	}
	if _, err := FindJavaRuntime(ctx, newImage(t).fs(), "java", temurinEnv, "/"); !errors.Is(err, ErrNotExist) {
		t.Errorf("no java: %v, want ErrNotExist", err)
	}
	unversioned := newImage(t).file("opt/j/bin/java", "java", 0o755)
	if _, err := FindJavaRuntime(ctx, unversioned.fs(), "/opt/j/bin/java", nil, "/"); err == nil {
		t.Error("a runtime with no release file nor versioned home: no error")
	}
	for v, want := range map[string]int{"1.8.0_462": 8, "21.0.5": 21, "11": 11, "17-ea": 17, "x": 0, "": 0} {
		if got := javaFeature(v); got != want {
			t.Errorf("javaFeature(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestParseJavaLaunch(t *testing.T) {
	cases := []struct {
		args []string
		env  []string
		want JavaLaunch
		ok   bool
	}{
		{javaCmd, nil, JavaLaunch{"java", []string{"."}, "hello"}, true},
		{[]string{"/opt/java/openjdk/bin/java", "-Xmx64m", "-classpath", "/app:lib", "com.example.Main", "arg"}, nil, JavaLaunch{"/opt/java/openjdk/bin/java", []string{"/app", "lib"}, "com.example.Main"}, true},
		{[]string{"sh", "-c", "JAVA_OPTS=x exec java --class-path=/c hello"}, nil, JavaLaunch{"java", []string{"/c"}, "hello"}, true},
		{[]string{"java", "hello"}, []string{"CLASSPATH=/cp"}, JavaLaunch{"java", []string{"/cp"}, "hello"}, true},
		{[]string{"java", "-jar", "app.jar"}, nil, JavaLaunch{}, false},
		{[]string{"java", "hello.java"}, nil, JavaLaunch{}, false},
		{[]string{"java", "-cp"}, nil, JavaLaunch{}, false},
		{[]string{"./hello"}, nil, JavaLaunch{}, false},
		{[]string{"/bin/sh", "-c", "exec /java/bin/java -cp . hello"}, nil, JavaLaunch{"/java/bin/java", []string{"."}, "hello"}, true},
	}
	for _, c := range cases {
		got, ok := ParseJavaLaunch(c.args, c.env)
		if ok != c.ok || got.Launcher != c.want.Launcher || got.MainClass != c.want.MainClass || strings.Join(got.ClassPath, ":") != strings.Join(c.want.ClassPath, ":") {
			t.Errorf("%q: got %+v %v, want %+v %v", c.args, got, ok, c.want, c.ok)
		}
	}
}

// The exit-1 Java row is explained from the class file's header and the
// runtime's release, even when its error output says nothing about it.
func TestExplainClassVersion(t *testing.T) {
	release := "JAVA_VERSION=\"1.8.0_462\"\n"
	want := "class file version 65.0; this Java 8 runtime accepts up to 52.0"
	cases := []struct {
		name   string
		image  *image
		run    Run
		kind   Kind
		reason string
	}{
		{"from the class file and the release", newImage(t).jre8(release).file("hello.class", classFile(65, 0), 0o644),
			Run{Args: javaCmd, Env: temurinEnv, Cwd: "/", Code: 1, Stderr: tooNew}, ClassVersion,
			want + " (/hello.class was compiled for Java 21; the runtime is /usr/lib/jvm/java-8-openjdk-amd64/jre, JAVA_VERSION 1.8.0_462)"},
		{"stderr silent", newImage(t).jre8(release).file("hello.class", classFile(65, 0), 0o644),
			Run{Args: javaCmd, Env: temurinEnv, Cwd: "/", Code: 1, Stderr: "Error: A JNI error has occurred\n"}, ClassVersion, want},
		{"runtime known by its home's name", newImage(t).jre8("").file("app/hello.class", classFile(61, 0), 0o644),
			Run{Args: javaCmd, Env: temurinEnv, Cwd: "/app", Code: 1}, ClassVersion,
			"class file version 61.0; this Java 8 runtime accepts up to 52.0 (/app/hello.class was compiled for Java 17"},
		{"class not too new: stderr stands", newImage(t).jre8(release).file("hello.class", classFile(52, 0), 0o644),
			Run{Args: javaCmd, Env: temurinEnv, Cwd: "/", Code: 1, Stderr: "Exception in thread \"main\" java.lang.NoClassDefFoundError: x\n"}, Exited,
			"exited with code 1: Exception in thread \"main\" java.lang.NoClassDefFoundError: x"},
		{"no class file: stderr stands", newImage(t).jre8(release),
			Run{Args: javaCmd, Env: temurinEnv, Cwd: "/", Code: 1, Stderr: tooNew}, ClassVersion,
			"class file version 65 is newer than this Java runtime (it reads up to 52, Java 8)"},
	}
	// An FS that cannot show links still has the launcher's version.
	cases = append(cases, struct {
		name   string
		image  *image
		run    Run
		kind   Kind
		reason string
	}{"links not seen: the launcher's version", newImage(t).jre8Launcher("", launcher8).file("hello.class", classFile(65, 0), 0o644),
		Run{Args: javaCmd, Env: temurinEnv, Cwd: "/", Code: 1, Stderr: tooNew}, ClassVersion,
		want + " (/hello.class was compiled for Java 21; the runtime is /opt/java/openjdk, java 1.8.0_504-8u504-ga-1-b01)"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fsys FS = c.image.fs()
			if strings.HasPrefix(c.name, "links not seen") {
				fsys = followFS{c.image.fs()}
			}
			d := Explain(ctx, fsys, c.run)
			if d.ExitCode != 1 || d.Kind != c.kind || !strings.Contains(d.Reason, c.reason) {
				t.Errorf("got %d %s %q\nwant 1 %s containing %q", d.ExitCode, d.Kind, d.Reason, c.kind, c.reason)
			}
		})
	}
}
