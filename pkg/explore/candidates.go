package explore

import (
	"fmt"
	"slices"
	"strings"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// DebianSlim is Debian's slim image, a run base (not in llbdefs' catalog
// of the seed's images; its stand-in is an alias of the minbase debian
// stand-in, which is as slim).
const DebianSlim = "docker.io/library/debian:bookworm-slim"

// Names of the run bases.
const (
	BaseScratch          = "scratch"
	BaseDistrolessStatic = "distroless-static"
	BaseDistrolessBase   = "distroless-base"
	BaseDistrolessCC     = "distroless-cc"
	BaseAlpine           = "alpine"
	BaseBusybox          = "busybox"
	BaseBusyboxGlibc     = "busybox-glibc"
	BaseDebianSlim       = "debian-slim"
	// BaseBuild is the build variant's own stage: the image the program
	// was built in, with it.
	BaseBuild = "build"
	// BaseJRE is a Java runtime image, for the class files javac makes.
	BaseJRE = "jre"
	// BaseDistrolessJavaBase is distroless' cc with zlib: what a runtime
	// made by jlink links to.
	BaseDistrolessJavaBase = "distroless-java-base"
	// BaseDistrolessPython is distroless' Python, for a script that
	// needs nothing beyond the standard library.
	BaseDistrolessPython = "distroless-python3"
)

// A Base is an image a candidate's final stage starts from.
type Base struct {
	Name  string `json:"name"`
	Image string `json:"image"` // "" for scratch and for BaseBuild
}

// nativeBases are the run bases of a native executable, smallest first.
var nativeBases = []Base{
	{BaseScratch, ""},
	{BaseDistrolessStatic, llbdefs.DistrolessStatic},
	{BaseDistrolessBase, llbdefs.DistrolessBase},
	{BaseDistrolessCC, llbdefs.DistrolessCC},
	{BaseAlpine, llbdefs.Alpine},
	{BaseBusybox, llbdefs.Busybox},
	{BaseBusyboxGlibc, llbdefs.BusyboxGlibc},
	{BaseDebianSlim, DebianSlim},
	{BaseBuild, ""},
}

// javaRuntimeBases are the run bases of a runtime made by jlink.
var javaRuntimeBases = append(slices.Clip(nativeBases), Base{BaseDistrolessJavaBase, llbdefs.DistrolessJavaBase})

// Where a run stage finds what a program needs beyond itself: the
// distroless static image holds the CA bundle and the time zone database,
// and nothing else (Debian's ca-certificates and tzdata).
const (
	caBundle    = "/etc/ssl/certs/ca-certificates.crt"
	zoneinfo    = "/usr/share/zoneinfo"
	extrasImage = llbdefs.DistrolessStatic
)

// Cache mounts shared by every Go build variant (and every explore run on
// the daemon): the module cache, so that dependencies are downloaded once,
// and the build cache, locked so that concurrent builds take turns and
// find what the previous one compiled.
const (
	goModCache   = "/go/pkg/mod"
	goModCacheID = "minikit-explore-gomod"
	goBuildID    = "minikit-explore-gobuild"
)

// Build commands shared with llbdefs' extras (the same vertices: BuildKit
// runs them once for both).
const (
	muslToolsInstall = "apt-get update && apt-get install -y --no-install-recommends musl-tools"
	jdkInstall       = "apt-get update && apt-get install -y --no-install-recommends openjdk-17-jdk-headless binutils"
	cargoInstall     = "command -v cargo >/dev/null || { apt-get update && apt-get install -y --no-install-recommends cargo; }"
)

// A Variant is one way of building the program: one build stage, shared
// by every run base it is put on.
type Variant struct {
	Name string `json:"name"`
	// Flags says what is particular about it, for people.
	Flags string `json:"flags"`
	// Image is the build image.
	Image string `json:"image"`
	// Stage is the build stage; the executable (or runtime) is at Exe in
	// it.
	Stage llbdefs.Stage `json:"-"`
	Exe   string        `json:"exe"`
	// Native is set when Exe is a native executable: its size is the
	// program's own, what the winner is compared with.
	Native bool `json:"native"`

	copies   []copyOut // what a run stage copies out of Stage
	cmd      []string  // the exec-form command in a run stage
	buildCmd []string  // the command in Stage itself (BaseBuild)
	bases    []Base    // the run bases that can make sense
}

// copyOut is a copy into a run stage: from the variant's Stage, or with
// context from the build context itself.
type copyOut struct {
	src, dst string
	context  bool
}

// A Plan is what Explore builds for a program: its build variants, and
// the run bases each is put on.
type Plan struct {
	Program  Program   `json:"program"`
	Variants []Variant `json:"variants"`
	// Shell adds, for the last variant (the most static one), a candidate
	// on scratch whose Cmd is in shell form: it needs /bin/sh, the lesson
	// of the seed's scratch-string row.
	Shell bool `json:"shell"`
	// Bases is the run bases selected (nil: every one a variant has).
	Bases []string `json:"bases,omitempty"`
	// GoEnv is Go's environment in the Go build stages (WithGoEnv).
	GoEnv []string `json:"go_env,omitempty"`
}

// A PlanOption changes a Plan.
type PlanOption func(*planOptions)

type planOptions struct {
	bases   []string
	noShell bool
	goEnv   []string
}

// WithBases keeps only the run bases named (see BaseNames): explore puts
// every variant on each of them that makes sense for it.
func WithBases(names ...string) PlanOption {
	return func(o *planOptions) { o.bases = append(o.bases, names...) }
}

// WithoutShellForm leaves out the shell-form Cmd candidate.
func WithoutShellForm() PlanOption {
	return func(o *planOptions) { o.noShell = true }
}

// WithGoEnv sets Go's environment in the Go build stages (KEY=VALUE):
// GOPROXY, GONOSUMDB, GOFLAGS... as the build needs them to download
// the module's dependencies.
func WithGoEnv(env ...string) PlanOption {
	return func(o *planOptions) { o.goEnv = append(o.goEnv, env...) }
}

// BaseNames lists the run base names a plan can be given, for a kind.
func BaseNames(k Kind) []string {
	var out []string
	for _, b := range kindBases(k) {
		out = append(out, b.Name)
	}
	return out
}

func kindBases(k Kind) []Base {
	switch k {
	case Python:
		return []Base{{BaseBuild, ""}, {BaseDistrolessPython, llbdefs.DistrolessPython}}
	case Java:
		return append(slices.Clip(javaRuntimeBases), Base{BaseJRE, llbdefs.JRE})
	}
	return nativeBases
}

// NewPlan returns the build variants of p and the run bases they go on.
func NewPlan(p Program, opts ...PlanOption) (Plan, error) {
	var o planOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	known := BaseNames(p.Kind)
	for _, b := range o.bases {
		if !slices.Contains(known, b) {
			return Plan{}, fmt.Errorf("run base %q: a %s program's run bases are %s", b, p.Kind, strings.Join(known, ", "))
		}
	}
	for _, kv := range o.goEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return Plan{}, fmt.Errorf("Go environment %q: want KEY=VALUE", kv)
		}
	}
	var vs []Variant
	switch p.Kind {
	case Go:
		vs = goVariants(p, o.goEnv)
	case C:
		vs = cVariants(p)
	case Rust:
		vs = rustVariants(p)
	case Python:
		vs = pythonVariants(p)
	case Java:
		vs = javaVariants(p)
	default:
		return Plan{}, fmt.Errorf("explore: no build variants for a program of kind %q", p.Kind)
	}
	pl := Plan{Program: p, Variants: vs, Shell: !o.noShell && p.Kind != Python && p.Kind != Java, Bases: o.bases, GoEnv: o.goEnv}
	return pl, nil
}

// exePath is where a native build variant leaves the executable.
func exePath(p Program) string { return "/out/" + p.Name }

// runPath is where a run stage puts it.
func runPath(p Program) string { return "/" + p.Name }

// nativeVariant is a variant whose build leaves one executable at
// exePath, run from runPath on every native base.
func nativeVariant(p Program, name, flags string, st llbdefs.Stage) Variant {
	return Variant{
		Name: name, Flags: flags, Image: st.Image(), Stage: st, Exe: exePath(p), Native: true,
		copies:   []copyOut{{src: exePath(p), dst: runPath(p)}},
		cmd:      []string{runPath(p)},
		buildCmd: []string{exePath(p)},
		bases:    nativeBases,
	}
}

// goSource is the Go build stages' common start: the golang image, Go's
// environment, the module in /src.
func goSource(env []string) llbdefs.Stage {
	src := llbdefs.From(llbdefs.Golang)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		src = src.Env(k, v)
	}
	return src.Workdir("/src").Copy(".", ".")
}

func goVariants(p Program, env []string) []Variant {
	src := goSource(env)
	build := func(st llbdefs.Stage, flags string) llbdefs.Stage {
		cmd := "mkdir -p /out && go build " + flags + "-o " + exePath(p) + " " + p.MainPkg
		return st.Run(cmd, goCacheMounts()...)
	}
	noCgo := src.Env("CGO_ENABLED", "0")
	const strip = `-trimpath -ldflags="-s -w" `
	return []Variant{
		nativeVariant(p, "go", "go build, as written (cgo on: the golang image has a C compiler)", build(src, "")),
		nativeVariant(p, "go-nocgo", "CGO_ENABLED=0: a static executable", build(noCgo, "")),
		nativeVariant(p, "go-strip", `-trimpath -ldflags="-s -w": no symbol table, no DWARF`, build(src, strip)),
		nativeVariant(p, "go-static", `CGO_ENABLED=0 -trimpath -ldflags="-s -w": static and stripped`, build(noCgo, strip)),
	}
}

// goCacheMounts are the Go build steps' cache mounts (see goModCacheID).
func goCacheMounts() []llbdefs.RunOption {
	return []llbdefs.RunOption{
		llbdefs.CacheMount(goModCache, goModCacheID),
		llbdefs.CacheMount(llbdefs.GoBuildCache, goBuildID, llbdefs.SharingLocked()),
	}
}

// goListDeps is the stage that lists the main package's dependencies
// (import paths, one a line) into depsFile; it shares the variants'
// module cache, so the dependencies it downloads are there for them.
func goListDeps(p Program, env []string) llbdefs.Stage {
	return goSource(env).Run("go list -deps -f '{{.ImportPath}}' "+p.MainPkg+" > "+depsFile, goCacheMounts()...)
}

// depsFile is where goListDeps writes the dependency list.
const depsFile = "/minikit-explore-deps.txt"

func cVariants(p Program) []Variant {
	gcc := llbdefs.From(llbdefs.GCC).Workdir("/src").Copy(".", ".")
	musl := llbdefs.From(llbdefs.GCC).Run(muslToolsInstall).Workdir("/src").Copy(".", ".")
	if p.Makefile != "" {
		mk := func(st llbdefs.Stage, vars string) llbdefs.Stage {
			return st.Run(makeAndCollect(p, vars))
		}
		return []Variant{
			nativeVariant(p, "make", "make all, as written", mk(gcc, "")),
			nativeVariant(p, "make-static", "make all LDFLAGS=-static", mk(gcc, "LDFLAGS=-static")),
			nativeVariant(p, "make-static-s", `make all LDFLAGS="-static -s"`, mk(gcc, `LDFLAGS="-static -s"`)),
			nativeVariant(p, "musl-static", `make all CC=musl-gcc LDFLAGS="-static -s" (musl-tools from Debian)`, mk(musl, `CC=musl-gcc LDFLAGS="-static -s"`)),
		}
	}
	libs := ""
	if len(p.Libs) > 0 {
		libs = " " + strings.Join(p.Libs, " ")
	}
	cc := func(st llbdefs.Stage, compiler, flags string) llbdefs.Stage {
		return st.Run("mkdir -p /out && " + compiler + " " + flags + "-o " + exePath(p) + " " + shellQuote(p.Source) + libs)
	}
	return []Variant{
		nativeVariant(p, "gcc", "gcc, as written (dynamic, glibc)", cc(gcc, "gcc", "")),
		nativeVariant(p, "gcc-static", "gcc -static", cc(gcc, "gcc", "-static ")),
		nativeVariant(p, "gcc-static-s", "gcc -static -Os -s", cc(gcc, "gcc", "-static -Os -s ")),
		nativeVariant(p, "musl-static", "musl-gcc -static -Os -s (musl-tools from Debian)", cc(musl, "musl-gcc", "-static -Os -s ")),
	}
}

// makeAndCollect runs make all with vars on its command line (which
// override the Makefile's own) and copies the one executable it made to
// exePath.
func makeAndCollect(p Program, vars string) string {
	mk := "make all"
	if vars != "" {
		mk += " " + vars
	}
	return "touch /tmp/.minikit-stamp && " + mk + " && mkdir -p /out && " +
		"set -- $(find . -type f -perm -u+x -newer /tmp/.minikit-stamp ! -name '*.o' ! -name '*.so' ! -name '*.a') && " +
		`if [ $# -ne 1 ]; then echo "make all made $# new executables ($*): explore needs exactly one" >&2; exit 1; fi && ` +
		`cp "$1" ` + exePath(p)
}

func rustVariants(p Program) []Variant {
	src := llbdefs.From(llbdefs.Rust).Run(cargoInstall).Workdir("/src").Copy(".", ".")
	offline := ""
	if p.Vendored {
		offline = " --offline"
	}
	const target = "x86_64-unknown-linux-gnu"
	cargo := func(st llbdefs.Stage, static bool) llbdefs.Stage {
		dir, tflag := "target/release/", ""
		if static {
			dir, tflag = "target/"+target+"/release/", " --target "+target
		}
		return st.Run("cargo build --release" + offline + tflag + " && mkdir -p /out && cp " + dir + p.Name + " " + exePath(p))
	}
	static := src.Env("RUSTFLAGS", "-C target-feature=+crt-static")
	small := static.Env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "z").Env("CARGO_PROFILE_RELEASE_PANIC", "abort").
		Env("CARGO_PROFILE_RELEASE_STRIP", "symbols").Env("CARGO_PROFILE_RELEASE_LTO", "true").
		Env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
	return []Variant{
		nativeVariant(p, "cargo", "cargo build --release, as written", cargo(src, false)),
		nativeVariant(p, "cargo-static", "RUSTFLAGS=-C target-feature=+crt-static", cargo(static, true)),
		nativeVariant(p, "cargo-small", "static, opt-level=z, panic=abort, strip, LTO, one codegen unit", cargo(small, true)),
	}
}

func pythonVariants(p Program) []Variant {
	script := "/app/" + p.Source
	cmd := []string{"python3", script}
	one := func(name, image string) Variant {
		st := llbdefs.From(image).Workdir("/app")
		if p.Requirements != "" {
			st = st.Copy(p.Requirements, ".").Run("pip install --no-cache-dir -r " + shellQuote(p.Requirements))
		}
		st = st.Copy(p.Source, ".")
		return Variant{Name: name, Flags: "the " + llbdefs.ShortRef(image) + " image", Image: image, Stage: st, Exe: script,
			cmd: cmd, buildCmd: cmd, bases: []Base{{BaseBuild, ""}}}
	}
	vs := []Variant{one("python", llbdefs.Python), one("python-slim", llbdefs.PythonSlim)}
	if p.Requirements == "" {
		// The standard library only: the script alone, on distroless'
		// Python (no build: the run stage copies it from the context).
		vs = append(vs, Variant{Name: "script", Flags: "the script alone (no requirements.txt)", Exe: script,
			copies: []copyOut{{src: p.Source, dst: script, context: true}}, cmd: cmd,
			bases: []Base{{BaseDistrolessPython, llbdefs.DistrolessPython}}})
	}
	return vs
}

func javaVariants(p Program) []Variant {
	class := "/app/" + p.Class + ".class"
	jdk := llbdefs.From(llbdefs.JDK).Workdir("/app").Copy(p.Source, ".").Run("javac " + shellQuote(p.Source))
	jlink := llbdefs.From(llbdefs.Debian).Run(jdkInstall).Workdir("/app").Copy(p.Source, ".").Run("javac " + shellQuote(p.Source)).
		Run("jlink --add-modules $(jdeps --print-module-deps *.class) --strip-debug --no-header-files --no-man-pages --compress=2 --output /java")
	javaCmd := []string{"java", "-cp", "/app", p.Class}
	return []Variant{
		{Name: "jdk", Flags: "javac, run by the JDK's java", Image: llbdefs.JDK, Stage: jdk, Exe: class,
			copies: []copyOut{{src: "/app/*.class", dst: "/app/"}}, cmd: javaCmd, buildCmd: javaCmd,
			bases: []Base{{BaseBuild, ""}, {BaseJRE, llbdefs.JRE}}},
		{Name: "jlink", Flags: "jdeps + jlink: a runtime of the modules the class needs (Debian's OpenJDK 17)", Image: llbdefs.Debian, Stage: jlink, Exe: "/java",
			copies: []copyOut{{src: "/java", dst: "/java"}, {src: "/app/*.class", dst: "/app/"}}, cmd: []string{"/java/bin/java", "-cp", "/app", p.Class},
			buildCmd: []string{"/java/bin/java", "-cp", "/app", p.Class}, bases: javaRuntimeBases},
	}
}

// shellQuote quotes s for /bin/sh when it holds anything but plain
// characters.
func shellQuote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./+=:,@%", r)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// BaseFacts is what a run base holds of what programs need besides
// themselves, read from the image (Explore's first solve).
type BaseFacts struct {
	CA    bool `json:"ca_bundle"` // /etc/ssl/certs/ca-certificates.crt
	TZ    bool `json:"tzdata"`    // /usr/share/zoneinfo
	Shell bool `json:"shell"`     // /bin/sh
}

// Facts is what the candidates depend on beyond the plan: what each base
// image holds (by image reference; scratch holds nothing) and what the
// program needs.
type Facts struct {
	Bases   map[string]BaseFacts `json:"bases"`
	NeedsCA bool                 `json:"needs_ca"`
	NeedsTZ bool                 `json:"needs_tz"`
}

// KnownFacts are the bases' contents as their upstream images have them,
// for when they cannot be read (tests, a dry run): Explore reads them.
func KnownFacts(p Program) Facts {
	all := BaseFacts{CA: true, TZ: true}
	return Facts{NeedsCA: p.NeedsCA, NeedsTZ: p.NeedsTZ, Bases: map[string]BaseFacts{
		llbdefs.DistrolessStatic: all, llbdefs.DistrolessBase: all, llbdefs.DistrolessCC: all, llbdefs.DistrolessPython: all, llbdefs.DistrolessJavaBase: all,
		llbdefs.Alpine:  {CA: true, Shell: true},
		llbdefs.Busybox: {Shell: true}, llbdefs.BusyboxGlibc: {Shell: true},
		DebianSlim:     {TZ: true, Shell: true},
		llbdefs.Golang: {CA: true, TZ: true, Shell: true}, llbdefs.GCC: {CA: true, TZ: true, Shell: true},
		llbdefs.Rust: {CA: true, TZ: true, Shell: true}, llbdefs.Debian: {TZ: true, Shell: true},
		llbdefs.JDK: {CA: true, TZ: true, Shell: true}, llbdefs.JRE: {CA: true, TZ: true, Shell: true},
		llbdefs.Python: {CA: true, TZ: true, Shell: true}, llbdefs.PythonSlim: {CA: true, TZ: true, Shell: true},
	}}
}

// A Candidate is one image explore builds and runs: a build variant on a
// run base, with what it adds.
type Candidate struct {
	Name    string         `json:"name"`
	Variant string         `json:"variant"`
	Base    string         `json:"base"`
	Recipe  llbdefs.Recipe `json:"-"`
	// AddsCA and AddsTZ say that the CA bundle or the time zone database
	// is copied in (from the distroless static image): the program needs
	// it and the base lacks it.
	AddsCA bool `json:"adds_ca,omitempty"`
	AddsTZ bool `json:"adds_tz,omitempty"`
	// ShellForm: the Cmd is in shell form (/bin/sh -c).
	ShellForm bool `json:"shell_form,omitempty"`
}

// baseImage is the image a candidate's run stage starts from.
func (v Variant) baseImage(b Base) string {
	if b.Name == BaseBuild {
		return v.Image
	}
	return b.Image
}

// Bases lists the run bases v is put on in this plan.
func (pl Plan) bases(v Variant) []Base {
	if len(pl.Bases) == 0 {
		return v.bases
	}
	var out []Base
	for _, b := range v.bases {
		if slices.Contains(pl.Bases, b.Name) {
			out = append(out, b)
		}
	}
	return out
}

// Candidates crosses the plan's build variants with their run bases. A
// base that lacks the CA bundle or the time zone database the program
// needs gets them copied in (name suffix -ca, -tz); on scratch the
// candidate without them is kept too, so that the ranking shows why they
// are needed. Every candidate of a variant copies from the same Stage
// value: BuildKit builds it once.
func (pl Plan) Candidates(f Facts) []Candidate {
	var out []Candidate
	for vi, v := range pl.Variants {
		for _, b := range pl.bases(v) {
			img := v.baseImage(b)
			bf := f.Bases[img]
			addCA, addTZ := f.NeedsCA && !bf.CA, f.NeedsTZ && !bf.TZ
			if (addCA || addTZ) && b.Name == BaseScratch {
				out = append(out, pl.candidate(v, b, false, false, false))
			}
			out = append(out, pl.candidate(v, b, addCA, addTZ, false))
			if vi == len(pl.Variants)-1 && pl.Shell && b.Name == BaseScratch {
				out = append(out, pl.candidate(v, b, addCA, addTZ, true))
			}
		}
	}
	return out
}

func (pl Plan) candidate(v Variant, b Base, addCA, addTZ, shell bool) Candidate {
	p := pl.Program
	name := p.Name + "." + v.Name
	if b.Name != BaseBuild {
		name += "." + b.Name
	}
	if addCA {
		name += "-ca"
	}
	if addTZ {
		name += "-tz"
	}
	if shell {
		name += "-shell"
	}
	var final llbdefs.Stage
	cmd := v.cmd
	switch {
	case b.Name == BaseBuild:
		final, cmd = v.Stage, v.buildCmd
	case b.Image == "":
		final = llbdefs.Scratch()
	default:
		final = llbdefs.From(b.Image)
	}
	extras := llbdefs.From(extrasImage)
	if addCA {
		final = final.CopyFrom(extras, caBundle, caBundle)
	}
	if addTZ {
		final = final.CopyFrom(extras, zoneinfo, zoneinfo)
	}
	if b.Name != BaseBuild {
		for _, c := range v.copies {
			if c.context {
				final = final.Copy(c.src, c.dst)
			} else {
				final = final.CopyFrom(v.Stage, c.src, c.dst)
			}
		}
	}
	rc := llbdefs.Exec(cmd...)
	if shell {
		rc = llbdefs.Shell(strings.Join(cmd, " "))
	}
	why := v.Flags + ", on " + baseWords(b, v)
	if addCA || addTZ {
		why += " with " + strings.Join(addedWords(addCA, addTZ), " and ") + " copied from " + llbdefs.ShortRef(extrasImage)
	}
	if shell {
		why += "; shell-form CMD"
	}
	return Candidate{Name: name, Variant: v.Name, Base: b.Name, AddsCA: addCA, AddsTZ: addTZ, ShellForm: shell,
		Recipe: llbdefs.Recipe{Name: name, Final: final, Cmd: rc, Expect: llbdefs.Works, Why: why}}
}

func baseWords(b Base, v Variant) string {
	switch b.Name {
	case BaseBuild:
		return "the build image itself (" + llbdefs.ShortRef(v.Image) + ")"
	case BaseScratch:
		return "scratch"
	}
	return llbdefs.ShortRef(b.Image)
}

func addedWords(ca, tz bool) []string {
	var out []string
	if ca {
		out = append(out, "the CA bundle")
	}
	if tz {
		out = append(out, "the time zone database")
	}
	return out
}
