package llbdefs

import (
	"slices"
	"strings"
)

func javac(image string) Stage {
	return From(image).Copy("hello.java", ".").Run("javac hello.java")
}

// jlink builds a Java runtime holding only the modules hello.class needs,
// into /java.
func jlink(s Stage) Stage {
	return s.Run("jdeps --print-module-deps hello.class > java.modules").
		Run("jlink --strip-debug --add-modules $(cat java.modules) --output /java")
}

// Run stages that copy a build's product into a base image.
func onto(base string, from Stage, src string) Stage {
	return From(base).CopyFrom(from, src, ".")
}

func ontoScratch(from Stage, src string) Stage {
	return Scratch().CopyFrom(from, src, ".")
}

// pipInstall installs Python packages, one RUN each as in the original.
func pipInstall(s Stage, prefix string, pkgs ...string) Stage {
	for _, p := range pkgs {
		s = s.Run(prefix + p)
	}
	return s
}

const (
	apkBuildDeps = "apk add build-base freetype-dev jpeg-dev libzip-dev"
	javaRun      = "exec java -cp . hello"
	temurinNote  = "the deprecated openjdk image is replaced by Eclipse Temurin of the same Java version"
	// musllinuxNote: the seed's "no musl wheels" was 2020's truth.
	musllinuxNote = "2020's truth: numpy, pandas and matplotlib publish musllinux wheels now, so upstream pip may download them rather than compile everything"
	// graalVMNote: the image's own WORKDIR is /app, where the original
	// found the executable; current GraalVM refuses --static without
	// --libc=musl (a glibc static executable is not supported).
	graalVMNote = "native-image-community:17 no longer receives builds: GraalVM for JDK 25 replaces it, whose native-image needs --libc=musl with --static"
	// jre8Glibc is how eclipse-temurin:8-jre-alpine's stand-in differs from it.
	jre8Glibc = "a glibc JRE 8 (Debian sid's OpenJDK 8) stands in for Temurin's musl JRE 8 on Alpine"
)

// Catalog returns the 51 combinations of the seed matrix, sorted by name.
func Catalog() []Recipe {
	// Build stages shared by several recipes, declared once. Each leaves
	// its program in the stage's working directory: / for most images, /go
	// for golang.
	helloCGCC := From(GCC).Copy("hello.c", ".").Run("gcc -o hello hello.c")
	helloCGCCStatic := From(GCC).Copy("hello.c", ".").Run("gcc -o hello hello.c -static")
	helloCAlpine := From(Alpine).Run("apk add build-base").Copy("hello.c", ".").Run("gcc -o hello hello.c")
	helloCAlpineSt := From(Alpine).Run("apk add build-base").Copy("hello.c", ".").Run("gcc -o hello hello.c -static")

	helloGo := From(Golang).Copy("hello.go", ".").Run("go build hello.go")
	helloGoAlpine := From(GolangAlpine).Copy("hello.go", ".").Run("go build hello.go")
	helloGoWorkdir := From(Golang).Workdir("/src").Copy("hello.go", ".").Run("go build hello.go")
	whatsmyip := From(Golang).Copy("whatsmyip.go", ".").Run("go build whatsmyip.go")
	whatsmyipAlpine := From(GolangAlpine).Copy("whatsmyip.go", ".").Run("go build whatsmyip.go")
	whatsmyipNoCgo := From(Golang).Env("CGO_ENABLED", "0").Copy("whatsmyip.go", ".").Run("go build whatsmyip.go")

	helloRust := From(Rust).Copy("hello.rs", ".").Run("rustc hello.rs")
	helloRustAlpine := From(RustAlpine).Copy("hello.rs", ".").Run("rustc hello.rs")

	javac17 := javac(JDK17)
	javac21 := javac(JDK)
	jlink17 := jlink(javac17)
	jlinkAlpine := jlink(From(JDK17Alpine).Run("apk add binutils").Copy("hello.java", ".").Run("javac hello.java"))

	dataScience := []string{"matplotlib", "numpy", "pandas"}
	helloC := Exec("./hello")
	rows := []Recipe{
		// C
		{Name: "hello-c.alpine", Final: helloCAlpine, Cmd: helloC, Expect: Works, StandIn: Online, Why: "musl build runs on musl", Offline: "needs Alpine's build-base from the apk index: a musl-hosted gcc, which no Debian suite packages"},
		{Name: "hello-c.alpine-static.scratch", Final: ontoScratch(helloCAlpineSt, "/hello"), Cmd: helloC, Expect: Works, StandIn: Online, Why: "static binary", Offline: "gcc -static against musl's libc.a needs Alpine's build-base from the apk index; no Debian suite packages a musl-hosted gcc (musl-tools only wraps the glibc-hosted one)"},
		{Name: "hello-c.alpine.alpine", Final: onto(Alpine, helloCAlpine, "/hello"), Cmd: helloC, Expect: Works, StandIn: Online, Why: "musl build runs on musl", Offline: "its build stage needs build-base from the apk index (a musl-hosted gcc, which no Debian suite packages); only its alpine run stage has a stand-in"},
		{Name: "hello-c.gcc", Final: helloCGCC, Cmd: helloC, Expect: Works, StandIn: Offline},
		{Name: "hello-c.gcc-static.alpine", Final: onto(Alpine, helloCGCCStatic, "/hello"), Cmd: helloC, Expect: Works, StandIn: Offline, Why: "a static glibc binary needs no loader"},
		{Name: "hello-c.gcc-static.scratch", Final: ontoScratch(helloCGCCStatic, "/hello"), Cmd: helloC, Expect: Works, StandIn: Offline, Why: "static binary"},
		{Name: "hello-c.gcc.alpine", Final: onto(Alpine, helloCGCC, "/hello"), Cmd: helloC, Expect: CannotStart, StandIn: Offline, Why: "the glibc loader is absent on a musl system"},
		{Name: "hello-c.gcc.scratch", Final: ontoScratch(helloCGCC, "/hello"), Cmd: helloC, Expect: CannotStart, StandIn: Offline, Why: "no loader, no libc"},
		{Name: "hello-c.gcc.ubuntu", Final: onto(Ubuntu, helloCGCC, "/hello"), Cmd: helloC, Expect: Works, StandIn: Offline, Why: "glibc binary on a glibc system", Note: "offline, Debian stands in for Ubuntu"},

		// Go
		{Name: "hello-go.golang", Final: helloGo, Cmd: helloC, Expect: Works, StandIn: Offline},
		{Name: "hello-go.golang-alpine.alpine", Final: onto(Alpine, helloGoAlpine, "/go/hello"), Cmd: helloC, Expect: Works, StandIn: Offline},
		{Name: "hello-go.golang-alpine.scratch", Final: ontoScratch(helloGoAlpine, "/go/hello"), Cmd: helloC, Expect: Works, StandIn: Offline, Why: "no C compiler, so no cgo: static binary"},
		{Name: "hello-go.golang.scratch", Final: ontoScratch(helloGo, "/go/hello"), Cmd: helloC, Expect: Works, StandIn: Offline, Why: "fmt alone links statically even with cgo on"},
		{Name: "hello-go.golang.scratch-string", Final: ontoScratch(helloGo, "/go/hello"), Cmd: Shell("./hello"), Expect: CannotStart, StandIn: Offline, Why: "a shell-form CMD needs /bin/sh"},
		{Name: "hello-go.golang.ubuntu-noworkdir.err", Final: onto(Ubuntu, helloGo, "hello"), Cmd: helloC, Expect: BuildFails, StandIn: Offline, Why: "the binary is at /go/hello, not /hello: COPY --from paths start at the root"},
		{Name: "hello-go.golang.ubuntu-workdir", Final: onto(Ubuntu, helloGoWorkdir, "/src/hello"), Cmd: helloC, Expect: Works, StandIn: Offline, Why: "an explicit WORKDIR makes the path known", Note: "offline, Debian stands in for Ubuntu"},

		// Java
		{Name: "hello-java.amazoncorretto", Final: javac(Corretto), Cmd: Shell(javaRun), Expect: Works, StandIn: Offline, Note: "offline, Debian trixie's OpenJDK 21 stands in for Corretto 21"},
		{Name: "hello-java.eclipse-temurin.native-image.scratch", Final: ontoScratch(From(GraalVMNative).CopyFrom(javac17, "/hello.class", ".").Run("native-image hello --no-fallback --static --libc=musl"), "/app/hello"), Cmd: helloC, Expect: Works, StandIn: Online, Why: "three stages: javac, GraalVM native-image, scratch", Note: graalVMNote, Offline: "native-image needs GraalVM, and --static --libc=musl the musl toolchain of its -muslib image; no Debian suite packages GraalVM, so this row is unverified here"},
		{Name: "hello-java.openjdk", Final: javac21, Cmd: Shell(javaRun), Expect: Works, StandIn: Offline, Note: temurinNote},
		{Name: "hello-java.openjdk-11.openjdk-11-jre", Final: onto(JRE11, javac(JDK11), "/hello.class"), Cmd: Shell(javaRun), Expect: Works, StandIn: Offline, Note: temurinNote},
		{Name: "hello-java.openjdk-15-alpine-jlink.alpine", Final: From(Alpine).CopyFrom(jlinkAlpine, "/java", "/java").CopyFrom(jlinkAlpine, "/hello.class", "."), Cmd: Shell("exec /java/bin/java -cp . hello"), Expect: Works, StandIn: Online, Why: "a custom runtime made by jlink", Note: "openjdk:15-alpine is gone: Temurin 17 on Alpine replaces it", Offline: "jlink copies modules out of a musl JDK (eclipse-temurin:17-jdk-alpine, plus binutils from the apk index); no Debian suite packages a musl JDK, and a glibc runtime would not start on alpine"},
		{Name: "hello-java.openjdk-15-jlink.ubuntu", Final: From(Ubuntu).CopyFrom(jlink17, "/java", "/java").CopyFrom(jlink17, "/hello.class", "."), Cmd: Shell("exec /java/bin/java -cp . hello"), Expect: Works, StandIn: Offline, Why: "a custom runtime made by jlink", Note: "openjdk:15 is gone: Temurin 17 replaces it"},
		{Name: "hello-java.openjdk-8.openjdk-8-jre-alpine", Final: onto(JRE8Alpine, javac(JDK8), "/hello.class"), Cmd: Shell(javaRun), Expect: Works, StandIn: Partial, Why: "same Java version on both sides", Note: temurinNote, Offline: jre8Glibc + "; a class compiled by Java 8 runs on it whatever the libc"},
		{Name: "hello-java.openjdk-alpine", Final: javac(JDKAlpine), Cmd: Shell(javaRun), Expect: Works, StandIn: Online, Note: temurinNote, Offline: "eclipse-temurin:21-jdk-alpine is a musl build of the JDK; no Debian suite packages a musl JDK"},
		{Name: "hello-java.openjdk.openjdk-8-jre-alpine", Final: onto(JRE8Alpine, javac21, "/hello.class"), Cmd: Shell(javaRun), Expect: Fails, StandIn: Partial, Why: "the class file is too new for Java 8 (UnsupportedClassVersionError)", Note: temurinNote, Offline: jre8Glibc + "; a Java 8 runtime refuses a Java 21 class file whatever the libc"},
		{Name: "hello-java.openjdk.openjdk-jre", Final: onto(JRE, javac21, "/hello.class"), Cmd: Shell(javaRun), Expect: Works, StandIn: Offline, Note: temurinNote},

		// Python
		{Name: "hello-py.python", Final: From(Python).Copy("hello.py", "."), Cmd: Exec("./hello.py"), Expect: Works, StandIn: Offline, Note: "offline, Debian's python3 stands in"},
		{Name: "hello-py.python-alpine", Final: From(PythonAlpine).Copy("hello.py", "."), Cmd: Exec("./hello.py"), Expect: Works, StandIn: Online, Offline: "python:alpine is CPython built against musl; no Debian suite packages a musl Python"},

		// Rust
		{Name: "hello-rust.rust", Final: helloRust, Cmd: helloC, Expect: Works, StandIn: Offline, Note: "offline, Debian's rustc stands in"},
		{Name: "hello-rust.rust-alpine", Final: helloRustAlpine, Cmd: helloC, Expect: Works, StandIn: Online, Why: "musl target", Offline: "rust:alpine's rustc targets x86_64-unknown-linux-musl; no Debian suite packages Rust's standard library for a musl target"},
		{Name: "hello-rust.rust-alpine.alpine", Final: onto(Alpine, helloRustAlpine, "/hello"), Cmd: helloC, Expect: Works, StandIn: Online, Why: "the musl target links statically by default", Offline: "the static binary comes from rust:alpine's musl target, whose standard library no Debian suite packages; only the alpine run stage has a stand-in"},
		{Name: "hello-rust.rust.alpine", Final: onto(Alpine, helloRust, "/hello"), Cmd: helloC, Expect: CannotStart, StandIn: Offline, Why: "glibc binary on a musl system"},
		{Name: "hello-rust.rust.busybox-glibc", Final: onto(BusyboxGlibc, helloRust, "/hello"), Cmd: helloC, Expect: CannotStart, StandIn: Offline, Why: "glibc is there, but not every library the Rust binary needs (libdl in 2020; on the stand-ins, libgcc_s.so.1)"},
		{Name: "hello-rust.rust.debian", Final: onto(Debian, helloRust, "/hello"), Cmd: helloC, Expect: Works, StandIn: Offline},
		{Name: "hello-rust.rust.scratch", Final: ontoScratch(helloRust, "/hello"), Cmd: helloC, Expect: CannotStart, StandIn: Offline, Why: "dynamic binary, no loader"},

		// Python data science: pip needs PyPI, or offline minikit's package
		// index of wheels repackaged from Debian (the python stand-ins' pip.conf).
		{Name: "pyds.alpine", Final: pipInstall(From(PythonAlpine).Run(apkBuildDeps), "pip install ", dataScience...).Copy("pyds.py", "."), Cmd: Exec("./pyds.py"), Expect: Works, StandIn: Online, Why: "slow: no musl wheels, everything compiles", Note: musllinuxNote, Offline: "apk add build-base freetype-dev jpeg-dev libzip-dev needs the apk index, and pip then builds against a musl Python; no Debian suite packages either"},
		{Name: "pyds.alpine.alpine", Final: pipInstall(From(PythonAlpine).CopyFrom(pipInstall(From(PythonAlpine).Run(apkBuildDeps).Workdir("/wheels"), "pip wheel ", dataScience...), "/wheels", "/wheels").Run("apk add freetype libstdc++"), "pip install --no-index --find-links=/wheels ", dataScience...).Copy("pyds.py", "."), Cmd: Exec("./pyds.py"), Expect: Works, StandIn: Online, Why: "wheels built once, installed in the final stage", Note: musllinuxNote, Offline: "both stages need the apk index (build-base and headers to build the wheels, freetype and libstdc++ to run them) on a musl Python, which no Debian suite packages"},
		{Name: "pyds.python", Final: pipInstall(From(Python), "pip install ", dataScience...).Copy("pyds.py", "."), Cmd: Exec("./pyds.py"), Expect: Works, StandIn: Offline},
		{Name: "pyds.python-slim", Final: pipInstall(From(PythonSlim), "pip install ", dataScience...).Copy("pyds.py", "."), Cmd: Exec("./pyds.py"), Expect: Works, StandIn: Offline},

		// PyYAML
		{Name: "pyyaml.python", Final: From(Python).Run("pip install pyyaml").Copy("pyyaml.py", "."), Cmd: Shell("./pyyaml.py"), Expect: Works, StandIn: Offline},
		{Name: "pyyaml.python-alpine", Final: From(PythonAlpine).Run("pip install pyyaml").Copy("pyyaml.py", "."), Cmd: Shell("./pyyaml.py"), Expect: Works, StandIn: Online, Offline: "pip on python:alpine wants a musllinux (or source) PyYAML for a musl Python; no Debian suite packages a musl Python, and the stand-in index's wheels are glibc builds"},
		{Name: "pyyaml.python-alpine.python-alpine", Final: From(PythonAlpine).CopyFrom(From(PythonAlpine).Workdir("/wheels").Run("pip wheel pyyaml"), "/wheels", "/wheels").Run("pip install --no-index --find-links=/wheels pyyaml").Copy("pyyaml.py", "."), Cmd: Shell("./pyyaml.py"), Expect: Works, StandIn: Online, Offline: "pip wheel and pip install both run on a musl Python (python:alpine), which no Debian suite packages; the stand-in index has glibc wheels only"},
		{Name: "pyyaml.python-slim", Final: From(PythonSlim).Run("pip install pyyaml").Copy("pyyaml.py", "."), Cmd: Shell("./pyyaml.py"), Expect: Works, StandIn: Offline},

		// whatsmyip: one HTTPS request.
		{Name: "whatsmyip.golang", Final: whatsmyip, Cmd: Exec("./whatsmyip"), Expect: Works, StandIn: Offline, Network: true, Why: "needs the network"},
		{Name: "whatsmyip.golang-alpine.alpine", Final: onto(Alpine, whatsmyipAlpine, "/go/whatsmyip"), Cmd: Exec("./whatsmyip"), Expect: Works, StandIn: Offline, Network: true, Why: "static, and alpine has CA certificates"},
		{Name: "whatsmyip.golang-nocgo.scratch", Final: ontoScratch(whatsmyipNoCgo, "/go/whatsmyip").CopyFrom(whatsmyipNoCgo, "/etc/ssl", "/etc/ssl"), Cmd: Exec("./whatsmyip"), Expect: Works, StandIn: Offline, Network: true, Why: "static, with the CA certificates copied"},
		{Name: "whatsmyip.golang.alpine", Final: onto(Alpine, whatsmyip, "/go/whatsmyip"), Cmd: Exec("./whatsmyip"), Expect: CannotStart, StandIn: Offline, Network: true, Why: "net pulls in cgo: a glibc binary on musl"},
		{Name: "whatsmyip.golang.busybox", Final: onto(Busybox, whatsmyip, "/go/whatsmyip"), Cmd: Exec("./whatsmyip"), Expect: CannotStart, StandIn: Offline, Network: true, Why: "no glibc loader"},
		{Name: "whatsmyip.golang.busybox-glibc", Final: From(BusyboxGlibc).CopyFrom(From(Alpine), "/etc/ssl", "/etc/ssl").CopyFrom(whatsmyip, "/go/whatsmyip", "."), Cmd: Exec("./whatsmyip"), Expect: Works, StandIn: Offline, Network: true, Why: "glibc, and CA certificates copied from alpine"},
		{Name: "whatsmyip.golang.scratch", Final: ontoScratch(whatsmyip, "/go/whatsmyip"), Cmd: Exec("./whatsmyip"), Expect: CannotStart, StandIn: Offline, Network: true, Why: "dynamic binary, no loader"},
		{Name: "whatsmyip.golang.ubuntu", Final: onto(Ubuntu, whatsmyip, "/go/whatsmyip"), Cmd: Exec("./whatsmyip"), Expect: Fails, StandIn: Offline, Network: true, Why: "no CA certificates: TLS verification fails", Note: "offline, Debian stands in for Ubuntu"},
	}
	slices.SortFunc(rows, func(a, b Recipe) int { return strings.Compare(a.Name, b.Name) })
	return rows
}
