package llbdefs

import (
	"slices"
	"strings"
)

// Distroless run images, by their upstream names. Offline, the stand-in
// registry is buildkitd's mirror for gcr.io as for docker.io, and serves
// distroless-style stand-ins assembled from Debian bookworm packages the
// way distroless assembles its images (internal/standin). Distroless
// publishes no versioned tags: the -debian12 suffix pins the release.
const (
	// DistrolessStatic: CA certificates, tzdata, /etc/passwd with
	// nonroot; no libc, no shell.
	DistrolessStatic = "gcr.io/distroless/static-debian12:latest"
	// DistrolessBase: DistrolessStatic + glibc and OpenSSL; no libgcc_s.
	DistrolessBase = "gcr.io/distroless/base-debian12:latest"
	// DistrolessCC: DistrolessBase + libgcc_s and libstdc++.
	DistrolessCC = "gcr.io/distroless/cc-debian12:latest"
	// DistrolessJavaBase: DistrolessCC + zlib, what a jlink-made runtime
	// links to (no JRE: the java17-debian12 image adds one).
	DistrolessJavaBase = "gcr.io/distroless/java-base-debian12:latest"
	// DistrolessPython: DistrolessBase + Python 3.11. Its stand-in has
	// Debian's python3-minimal only (the interpreter and the modules it
	// starts with), not the full standard library upstream carries: the
	// recipes on it are Partial.
	DistrolessPython = "gcr.io/distroless/python3-debian12:latest"
)

// Build commands of the extra recipes: each program's smallest static
// executable the stand-in toolchains can make.
const (
	muslToolsInstall = "apt-get update && apt-get install -y --no-install-recommends musl-tools"
	muslStaticBuild  = "musl-gcc -static -Os -s -o hello hello.c"
	gccStaticStrip   = "gcc -static -Os -s -o hello hello.c"
	// -gcflags=all=-l turns inlining off: 5 % smaller, slower only where
	// hot loops would inline (not in these programs).
	goStaticFlags = `-trimpath -gcflags=all=-l -ldflags="-s -w"`
	// Debian's rustc is 1.63: -C strip is stable since 1.59.
	// A non-PIE static executable carries no relocations: 4 % smaller.
	rustStaticBuild = "rustc -C target-feature=+crt-static -C relocation-model=static -C opt-level=z -C panic=abort -C codegen-units=1 -C lto=fat -C strip=symbols hello.rs"
	// Bookworm's JDK is OpenJDK 17. Its jmods, which jlink links from, are
	// in openjdk-17-jdk-headless (later Debian releases split them out
	// into openjdk-NN-jmods; bookworm has no such package). jlink's
	// --strip-debug also strips the native libraries with objcopy:
	// binutils.
	jdkInstall = "apt-get update && apt-get install -y --no-install-recommends openjdk-17-jdk-headless binutils"
	// A runtime of only the modules hello.class needs; --compress=2 is
	// JDK 17's zip compression of the class files (zip-6 from JDK 21).
	jlinkMinimal   = "jlink --add-modules $(jdeps --print-module-deps hello.class) --strip-debug --no-header-files --no-man-pages --compress=2 --output /java"
	caBundle       = "/etc/ssl/certs/ca-certificates.crt"
	distrolessNote = "offline, a distroless-style stand-in assembled from Debian bookworm .debs is served for the gcr.io/distroless image"
	// pythonMinimalStandIn is how the python3-debian12 stand-in differs.
	pythonMinimalStandIn = "the gcr.io/distroless/python3-debian12 stand-in has Debian's python3-minimal (the interpreter and the modules it starts with), not the full standard library upstream ships; hello.py needs no more"
)

// go127Note is the Note of the Go 1.27 extras, measured on the stand-ins
// (the README's extras section): the stripped static hello is 1,487,008 B
// with Go 1.27.3, 1,556,642 B with 1.26.8; whatsmyip 5,509,280 B against
// 5,460,130 B, so whatsmyip's floor stays the Go 1.26 build.
const go127Note = "Go 1.27.3: the newest Go, its linker makes hello.go 4.5 % smaller than 1.26's (whatsmyip.go 0.9 % larger)"

// floors names, per program, the extra recipe whose image is the program's
// own stripped static executable alone (with, for whatsmyip, the CA bundle
// it needs): the floor every other image of that program is compared with.
var floors = map[string]string{
	"hello-c":    "hello-c.musl-static.scratch",
	"hello-go":   "hello-go.golang127-static.scratch",
	"hello-rust": "hello-rust.rustc-static.scratch",
	"whatsmyip":  "whatsmyip.golang-static.scratch",
}

// FloorRecipe names the recipe that measures program's floor: its
// stripped static executable on scratch. ok is false for programs that
// have none (interpreted ones).
func FloorRecipe(program string) (name string, ok bool) {
	name, ok = floors[program]
	return name, ok
}

// Floors maps each program that has a floor to its floor recipe (see
// FloorRecipe). It returns a fresh map.
func Floors() map[string]string {
	out := make(map[string]string, len(floors))
	for p, n := range floors {
		out[p] = n
	}
	return out
}

// Extras returns the recipes beyond the seed matrix, sorted by name, each
// marked Extra: stripped static builds onto scratch (the floors, see
// FloorRecipe), distroless-style run images, a runtime made by jlink for
// hello-java and a minimal Python for hello-py. They are kept apart from
// Catalog, whose 51 rows are the seed; All returns both.
func Extras() []Recipe {
	muslStatic := From(GCC).Run(muslToolsInstall).Copy("hello.c", ".").Run(muslStaticBuild)
	gccStaticS := From(GCC).Copy("hello.c", ".").Run(gccStaticStrip)
	helloCGCC := From(GCC).Copy("hello.c", ".").Run("gcc -o hello hello.c") // as in Catalog: same vertices

	goStatic := func(golang, prog string) Stage {
		return From(golang).Env("CGO_ENABLED", "0").Copy(prog+".go", ".").Run("go build " + goStaticFlags + " " + prog + ".go")
	}
	helloGo, whatsmyipGo := goStatic(Golang, "hello"), goStatic(Golang, "whatsmyip")
	helloGo127, whatsmyipGo127 := goStatic(Golang127, "hello"), goStatic(Golang127, "whatsmyip")
	whatsmyipCgo := From(Golang).Copy("whatsmyip.go", ".").Run("go build whatsmyip.go") // as in Catalog

	rustStatic := From(Rust).Copy("hello.rs", ".").Run(rustStaticBuild)
	rustDynamic := From(Rust).Copy("hello.rs", ".").Run("rustc hello.rs") // as in Catalog

	// Java: the JDK from Debian's archive in the debian stand-in, the
	// class and the runtime jlink makes for it copied out.
	javaJlink := From(Debian).Run(jdkInstall).Copy("hello.java", ".").Run("javac hello.java").Run(jlinkMinimal)
	jlinked := func(base string) Stage {
		return From(base).CopyFrom(javaJlink, "/java", "/java").CopyFrom(javaJlink, "/hello.class", ".")
	}

	hello, whatsmyip := Exec("./hello"), Exec("./whatsmyip")
	// Exec form: distroless has no shell, and hello.py's #!/usr/bin/env python has neither env nor python.
	javaHello, pyHello := Exec("/java/bin/java", "-cp", "/", "hello"), Exec("/usr/bin/python3", "hello.py")
	ex := func(r Recipe) Recipe {
		r.Extra, r.StandIn = true, Offline
		return r
	}
	partial := func(r Recipe, differs string) Recipe {
		r.StandIn, r.Offline = Partial, differs
		return r
	}
	rows := []Recipe{
		// C
		ex(Recipe{Name: "hello-c.musl-static.scratch", Final: ontoScratch(muslStatic, "/hello"), Cmd: hello, Expect: Works,
			Why: "musl-gcc -static -Os -s: the floor for hello-c", Note: "musl-tools installed from Debian's archive in the gcc stand-in"}),
		ex(Recipe{Name: "hello-c.musl-static.distroless-static", Final: onto(DistrolessStatic, muslStatic, "/hello"), Cmd: hello, Expect: Works,
			Why: "static binary, no libc needed", Note: distrolessNote}),
		ex(Recipe{Name: "hello-c.gcc-static-s.scratch", Final: ontoScratch(gccStaticS, "/hello"), Cmd: hello, Expect: Works,
			Why: "glibc static, -Os -s: glibc's static startup is larger than musl's"}),
		ex(Recipe{Name: "hello-c.gcc.distroless-base", Final: onto(DistrolessBase, helloCGCC, "/hello"), Cmd: hello, Expect: Works,
			Why: "dynamic glibc binary on a base with glibc", Note: distrolessNote}),

		// Go
		ex(Recipe{Name: "hello-go.golang127-static.scratch", Final: ontoScratch(helloGo127, "/go/hello"), Cmd: hello, Expect: Works,
			Why: "CGO_ENABLED=0, -trimpath, no inlining, -ldflags=\"-s -w\" with Go 1.27: the floor for hello-go", Note: go127Note}),
		ex(Recipe{Name: "hello-go.golang-static.scratch", Final: ontoScratch(helloGo, "/go/hello"), Cmd: hello, Expect: Works,
			Why: "CGO_ENABLED=0, -trimpath, no inlining, -ldflags=\"-s -w\" with Go 1.26: 4.7 % more than the Go 1.27 floor"}),
		ex(Recipe{Name: "hello-go.golang-static.distroless-static", Final: onto(DistrolessStatic, helloGo, "/go/hello"), Cmd: hello, Expect: Works,
			Why: "static binary", Note: distrolessNote}),
		ex(Recipe{Name: "whatsmyip.golang127-static.scratch", Final: ontoScratch(whatsmyipGo127, "/go/whatsmyip").CopyFrom(whatsmyipGo127, caBundle, caBundle), Cmd: whatsmyip, Expect: Works, Network: true,
			Why: "static, stripped, with only the CA bundle file, Go 1.27: not the floor, 1.27 makes whatsmyip larger", Note: go127Note}),
		ex(Recipe{Name: "whatsmyip.golang-static.scratch", Final: ontoScratch(whatsmyipGo, "/go/whatsmyip").CopyFrom(whatsmyipGo, caBundle, caBundle), Cmd: whatsmyip, Expect: Works, Network: true,
			Why: "static, stripped, with only the CA bundle file, Go 1.26: the floor for whatsmyip"}),
		ex(Recipe{Name: "whatsmyip.golang-static.distroless-static", Final: onto(DistrolessStatic, whatsmyipGo, "/go/whatsmyip"), Cmd: whatsmyip, Expect: Works, Network: true,
			Why: "static, and the base has CA certificates", Note: distrolessNote}),
		ex(Recipe{Name: "whatsmyip.golang.distroless-base", Final: onto(DistrolessBase, whatsmyipCgo, "/go/whatsmyip"), Cmd: whatsmyip, Expect: Works, Network: true,
			Why: "cgo binary on a base with glibc and CA certificates", Note: distrolessNote}),

		// Rust
		ex(Recipe{Name: "hello-rust.rustc-static.scratch", Final: ontoScratch(rustStatic, "/hello"), Cmd: hello, Expect: Works,
			Why: "+crt-static non-PIE, opt-level=z, panic=abort, LTO, strip=symbols: the floor for hello-rust", Note: "Debian's rustc 1.63 stands in"}),
		ex(Recipe{Name: "hello-rust.rustc-static.distroless-static", Final: onto(DistrolessStatic, rustStatic, "/hello"), Cmd: hello, Expect: Works,
			Why: "static binary", Note: distrolessNote}),
		ex(Recipe{Name: "hello-rust.rust.distroless-cc", Final: onto(DistrolessCC, rustDynamic, "/hello"), Cmd: hello, Expect: Works,
			Why: "glibc and libgcc_s: what a dynamic Rust binary needs", Note: distrolessNote}),
		ex(Recipe{Name: "hello-rust.rust.distroless-base", Final: onto(DistrolessBase, rustDynamic, "/hello"), Cmd: hello, Expect: CannotStart,
			Why: "glibc but no libgcc_s.so.1, which Rust's unwinder needs", Note: distrolessNote}),

		// Java, Python: no static executable, so no floor.
		ex(Recipe{Name: "hello-java.debian-jlink.distroless-java-base", Final: jlinked(DistrolessJavaBase), Cmd: javaHello, Expect: Works,
			Why: "jdeps + jlink: a runtime of java.base only, stripped and compressed, on the smallest base with what it links to (glibc, libstdc++, libgcc_s, zlib)", Note: "Debian's OpenJDK 17 (jmods included) installed from Debian's archive in the debian stand-in; " + distrolessNote}),
		ex(Recipe{Name: "hello-java.debian-jlink.distroless-cc", Final: jlinked(DistrolessCC), Cmd: javaHello, Expect: CannotStart,
			Why: "the java launcher needs libz.so.1, which cc lacks: why the Java base adds zlib", Note: distrolessNote}),
		partial(ex(Recipe{Name: "hello-py.distroless-python3-minimal", Final: From(DistrolessPython).Copy("hello.py", "."), Cmd: pyHello, Expect: Works,
			Why: "Debian's python3-minimal is enough for hello.py", Note: distrolessNote}), pythonMinimalStandIn),
	}
	slices.SortFunc(rows, func(a, b Recipe) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

// All returns the seed catalog followed by the extras.
func All() []Recipe {
	return append(Catalog(), Extras()...)
}
