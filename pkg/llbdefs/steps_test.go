package llbdefs

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// stepRecipes use every step and option of the stage language; the
// Dockerfile tests (dockerfile_test.go) compile their Dockerfiles with
// BuildKit's frontend and compare graphs and configs.
func stepRecipes() []Recipe {
	build := From(Golang).
		Arg("GOFLAGS", "-trimpath").
		Workdir("src").
		Copy("hello.go", ".", Chmod(0o600)).
		Run("go build -o /out/hello hello.go",
			CacheMount(GoBuildCache, "go-build", SharingLocked()),
			CacheMount("/go/pkg/mod", ""),
			NoNetwork()).
		User("nobody").
		Workdir("/home/nobody").
		Run("id > id.txt", CacheMount("/tmp/cache", "tmp", SharingPrivate()))
	return []Recipe{
		{Name: "steps.server", Final: From(Debian).
			CopyFrom(build, "/out/hello", "/usr/local/bin/hello", Chmod(0o755)).
			User("1000:1000").
			Entrypoint("/usr/local/bin/hello", "--serve").
			Label("org.opencontainers.image.title", "hello server").
			Label("my key", `$c "d"`).
			Expose("8080").
			Expose("53/udp").
			Env("K", "v"), Cmd: Exec("--port", "8080")},
		{Name: "steps.entrypoint-no-cmd", Final: Scratch().Entrypoint("/hello").Workdir("app"), Cmd: Cmd{}},
		{Name: "steps.empty-entrypoint", Final: From(Alpine).Entrypoint(), Cmd: Exec("/bin/true")},
	}
}

// frontend compiles a recipe's Dockerfile with BuildKit's Dockerfile
// frontend, as `docker build --build-arg` would with args.
func frontend(t *testing.T, r Recipe, args map[string]string) (*llb.Definition, ocispecs.ImageConfig) {
	t.Helper()
	text, err := r.RenderDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	plat := Platform()
	res, err := dockerfile2llb.Dockerfile2LLB(context.Background(), []byte(text), dockerfile2llb.ConvertOpt{
		Config:         dockerui.Config{BuildArgs: args},
		TargetPlatform: &plat,
		MetaResolver:   fakeImages{}, // dockerfile_test.go
	})
	if err != nil {
		t.Fatalf("Dockerfile2LLB: %v\n%s", err, text)
	}
	def, err := res.State.Marshal(context.Background(), llb.Platform(plat))
	if err != nil {
		t.Fatal(err)
	}
	return def, res.Image.Config.ImageConfig
}

// execs lists a definition's exec ops, in definition order.
func execs(t *testing.T, r Recipe, src Sources) []*pb.ExecOp {
	t.Helper()
	return execsOf(t, mustDef(t, r, src)) // cache_test.go
}

func execsOf(t *testing.T, def *llb.Definition) []*pb.ExecOp {
	t.Helper()
	var out []*pb.ExecOp
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		if e := op.GetExec(); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// fileActions lists a definition's file actions, in definition order.
func fileActions(t *testing.T, r Recipe, src Sources) []*pb.FileAction {
	t.Helper()
	def := mustDef(t, r, src)
	var out []*pb.FileAction
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		if f := op.GetFile(); f != nil {
			out = append(out, f.Actions...)
		}
	}
	return out
}

// dockerfileLines are the instructions of a recipe's Dockerfile.
func dockerfileLines(t *testing.T, r Recipe) []string {
	t.Helper()
	text, err := r.RenderDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// parsedStage is the final stage of a recipe's Dockerfile as BuildKit's
// parser reads it.
func parsedStage(t *testing.T, r Recipe) instructions.Stage {
	t.Helper()
	text, err := r.RenderDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	ast, err := parser.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatalf("instructions: %v\n%s", err, text)
	}
	return stages[len(stages)-1]
}

func TestUser(t *testing.T) {
	r := Recipe{Name: "t.user", Final: From(Debian).User("app").Run("id").Workdir("/home/app"), Cmd: Exec("x")}
	ex := execs(t, r, DefaultSources())
	if len(ex) != 1 || ex[0].Meta.User != "app" {
		t.Fatalf("RUN after USER: %v", ex)
	}
	var mkdir *pb.FileActionMkDir
	for _, a := range fileActions(t, r, DefaultSources()) {
		if m := a.GetMkdir(); m != nil {
			mkdir = m
		}
	}
	if mkdir == nil || mkdir.Path != "/home/app" || mkdir.Owner.GetUser().GetByName().GetName() != "app" {
		t.Errorf("WORKDIR after USER is not made as the user: %+v", mkdir)
	}
	if got := r.Config().User; got != "app" {
		t.Errorf("Config().User = %q", got)
	}
	if lines := dockerfileLines(t, r); !slices.Contains(lines, "USER app") {
		t.Errorf("no USER line: %q", lines)
	}
	// Without a USER step, RUN runs as the image's user: none set.
	if ex := execs(t, Recipe{Final: From(Debian).Run("id")}, DefaultSources()); ex[0].Meta.User != "" {
		t.Errorf("RUN without USER runs as %q", ex[0].Meta.User)
	}
	for _, bad := range []string{"", "a b", "x\ny"} {
		if err := (Recipe{Name: "bad", Final: Scratch().User(bad)}).Validate(); err == nil {
			t.Errorf("User(%q) validates", bad)
		}
	}
}

func TestEntrypoint(t *testing.T) {
	plain := Recipe{Name: "t.plain", Final: From(Debian).Copy("hello.c", "/"), Cmd: Exec("--port", "1")}
	r := plain
	r.Final = plain.Final.Entrypoint("/srv", "--verbose")
	if defDigest(mustDef(t, r, DefaultSources())) != defDigest(mustDef(t, plain, DefaultSources())) {
		t.Error("ENTRYPOINT changed the LLB: it is config only")
	}
	cfg := r.Config()
	if !slices.Equal(cfg.Entrypoint, []string{"/srv", "--verbose"}) || !slices.Equal(cfg.Cmd, []string{"--port", "1"}) {
		t.Errorf("Config: entrypoint %q cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	if lines := dockerfileLines(t, r); !slices.Contains(lines, `ENTRYPOINT ["/srv", "--verbose"]`) {
		t.Errorf("no ENTRYPOINT line: %q", lines)
	}
	st := parsedStage(t, r)
	var ep *instructions.EntrypointCommand
	for _, c := range st.Commands {
		if c, ok := c.(*instructions.EntrypointCommand); ok {
			ep = c
		}
	}
	if ep == nil || ep.PrependShell || !slices.Equal(ep.CmdLine, []string{"/srv", "--verbose"}) {
		t.Errorf("parsed ENTRYPOINT %+v", ep)
	}

	// Over a base with its own entrypoint and cmd: the entrypoint
	// replaces the base's and drops its cmd, as Docker does.
	base := ocispecs.Image{}
	base.Config.Entrypoint = []string{"/old"}
	base.Config.Cmd = []string{"old-arg"}
	noCmd := Recipe{Final: From(Debian).Entrypoint("/new")}
	img := noCmd.ImageConfig(base)
	if !slices.Equal(img.Config.Entrypoint, []string{"/new"}) || img.Config.Cmd != nil {
		t.Errorf("over a base: entrypoint %q cmd %q", img.Config.Entrypoint, img.Config.Cmd)
	}
	if lines := dockerfileLines(t, noCmd); slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "CMD") }) {
		t.Errorf("a recipe with no Cmd has a CMD line: %q", lines)
	}
	// No args: the base's entrypoint is cleared, not kept.
	cleared := Recipe{Final: From(Debian).Entrypoint()}
	if ep := cleared.Config().Entrypoint; ep == nil || len(ep) != 0 {
		t.Errorf("Entrypoint(): %#v, want an empty, non-nil entrypoint", ep)
	}
	if img := cleared.ImageConfig(base); len(img.Config.Entrypoint) != 0 {
		t.Errorf("Entrypoint() over a base: %q", img.Config.Entrypoint)
	}
	if lines := dockerfileLines(t, cleared); !slices.Contains(lines, "ENTRYPOINT []") {
		t.Errorf("no ENTRYPOINT [] line: %q", lines)
	}
}

func TestLabel(t *testing.T) {
	r := Recipe{Name: "t.label", Final: Scratch().
		Label("org.opencontainers.image.title", "hello server").
		Label("a=b", `$c "d"`).
		Label("org.opencontainers.image.title", "hello"), Cmd: Exec("x")}
	want := map[string]string{"org.opencontainers.image.title": "hello", "a=b": `$c "d"`}
	if got := r.Config().Labels; len(got) != 2 || got["org.opencontainers.image.title"] != "hello" || got["a=b"] != `$c "d"` {
		t.Errorf("Config().Labels = %v, want %v", got, want)
	}
	if _, err := r.RenderDockerfile(); !errors.Is(err, ErrNoDockerfile) || !strings.Contains(err.Error(), `"a=b"`) {
		t.Errorf("a label key with '=': %v; want ErrNoDockerfile (LABEL splits at the first '=')", err)
	}
	r.Final = Scratch().Label("org.opencontainers.image.title", "hello server").Label("my key", `$c "d"`)
	lines := dockerfileLines(t, r)
	for _, l := range []string{`LABEL org.opencontainers.image.title="hello server"`, `LABEL "my key"="\$c \"d\""`} {
		if !slices.Contains(lines, l) {
			t.Errorf("no line %s in %q", l, lines)
		}
	}
	if _, cfg := frontend(t, r, nil); !maps.Equal(cfg.Labels, r.Config().Labels) || len(cfg.Labels) != 2 {
		t.Errorf("the frontend sets labels %v, Config %v", cfg.Labels, r.Config().Labels)
	}
	// Labels are config only; the base's are kept.
	base := ocispecs.Image{}
	base.Config.Labels = map[string]string{"from": "base"}
	img := r.ImageConfig(base)
	if img.Config.Labels["from"] != "base" || img.Config.Labels["my key"] != `$c "d"` || len(img.Config.Labels) != 3 || len(base.Config.Labels) != 1 {
		t.Errorf("labels over a base: %v (base now %v)", img.Config.Labels, base.Config.Labels)
	}
	if err := (Recipe{Name: "bad", Final: Scratch().Label("", "v")}).Validate(); err == nil {
		t.Error("an empty label key validates")
	}
	if _, err := (Recipe{Name: "bad", Final: Scratch().Label("k", "two\nlines")}).RenderDockerfile(); !errors.Is(err, ErrNoDockerfile) {
		t.Errorf("a label with a newline: %v", err)
	}
}

func TestExpose(t *testing.T) {
	r := Recipe{Name: "t.expose", Final: Scratch().Expose("8080").Expose("53/udp").Expose("8080/tcp"), Cmd: Exec("x")}
	if got := r.Config().ExposedPorts; !slices.Equal(got, []string{"53/udp", "8080/tcp"}) {
		t.Errorf("Config().ExposedPorts = %q", got)
	}
	if lines := dockerfileLines(t, r); !slices.Contains(lines, "EXPOSE 8080/tcp") || !slices.Contains(lines, "EXPOSE 53/udp") {
		t.Errorf("EXPOSE lines: %q", lines)
	}
	if img := r.ImageConfig(ocispecs.Image{}); len(img.Config.ExposedPorts) != 2 {
		t.Errorf("ImageConfig ports %v", img.Config.ExposedPorts)
	}
	bad := Recipe{Name: "t.bad-port", Final: Scratch().Expose("http").Expose("8080"), Cmd: Exec("x")}
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), `EXPOSE "http"`) || !strings.Contains(err.Error(), "t.bad-port") {
		t.Errorf("Validate: %v", err)
	}
	if _, err := bad.Definition(context.Background(), DefaultSources()); err == nil {
		t.Error("Definition of a recipe with a bad port succeeds")
	}
	if _, err := bad.RenderDockerfile(); err == nil {
		t.Error("RenderDockerfile of a recipe with a bad port succeeds")
	}
	if got := bad.Config().ExposedPorts; !slices.Equal(got, []string{"8080/tcp"}) {
		t.Errorf("Config of a bad port: %q, want the valid one only", got)
	}
	// The state of an invalid stage fails to marshal; it does not panic.
	if _, err := bad.State(DefaultSources()).Marshal(context.Background()); err == nil {
		t.Error("the state of a stage with a bad port marshals")
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]string{
		"8080": "8080/tcp", "8080/tcp": "8080/tcp", "53/udp": "53/udp", "9/sctp": "9/sctp",
		"080": "80/tcp", "65535": "65535/tcp", "1/udp": "1/udp",
	} {
		if got, err := ParsePort(in); err != nil || got != want {
			t.Errorf("ParsePort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65536", "-1", "+80", "80/TCP", "80/", "/tcp", "http", "80-90", "8080/tcp/x", " 80", "1e3", "99999999999999999999"} {
		if got, err := ParsePort(in); err == nil {
			t.Errorf("ParsePort(%q) = %q, want an error", in, got)
		}
	}
}

func TestArg(t *testing.T) {
	r := Recipe{Name: "t.arg", Final: From(Debian).Arg("VERSION", "1.0").Run("echo $VERSION").Env("K", "v"), Cmd: Exec("x")}
	envOf := func(src Sources) []string {
		ex := execs(t, r, src)
		if len(ex) != 1 {
			t.Fatalf("%d execs", len(ex))
		}
		return ex[0].Meta.Env
	}
	if env := envOf(DefaultSources()); !slices.Contains(env, "VERSION=1.0") {
		t.Errorf("RUN env without build args: %q, want the default", env)
	}
	src := DefaultSources()
	src.BuildArgs = map[string]string{"VERSION": "2.0", "OTHER": "x"}
	if env := envOf(src); !slices.Contains(env, "VERSION=2.0") || slices.Contains(env, "VERSION=1.0") || slices.Contains(env, "OTHER=x") {
		t.Errorf("RUN env with VERSION=2.0: %q", env)
	}
	// The frontend given the same build arg runs the same environment.
	resolved := Sources{Context: SamplesSource(), Resolver: fakeImages{}, BuildArgs: map[string]string{"VERSION": "2.0"}}
	def, _ := frontend(t, r, resolved.BuildArgs)
	if fex, ex := execsOf(t, def), execs(t, r, resolved); len(fex) != 1 || !slices.Equal(fex[0].Meta.Env, ex[0].Meta.Env) {
		t.Errorf("frontend RUN env %q, recipe's %q", fex[0].Meta.Env, ex[0].Meta.Env)
	}
	if env := r.Config().Env; !slices.Equal(env, []string{"K=v"}) {
		t.Errorf("an ARG is in the image config: %q", env)
	}
	if lines := dockerfileLines(t, r); !slices.Contains(lines, "ARG VERSION=1.0") {
		t.Errorf("no ARG line: %q", lines)
	}
	empty := Recipe{Final: From(Debian).Arg("E", "")}
	if lines := dockerfileLines(t, empty); !slices.Contains(lines, `ARG E=""`) {
		t.Errorf("empty default: %q", lines)
	}
	for _, bad := range []string{"", "A=B", "A B", "$A"} {
		if err := (Recipe{Name: "bad", Final: Scratch().Arg(bad, "v")}).Validate(); err == nil {
			t.Errorf("Arg(%q) validates", bad)
		}
	}
}

func TestCopyChmod(t *testing.T) {
	modeOf := func(r Recipe) []int32 {
		var out []int32
		for _, a := range fileActions(t, r, DefaultSources()) {
			if c := a.GetCopy(); c != nil {
				out = append(out, c.Mode)
			}
		}
		return out
	}
	build := From(GCC).Run("true")
	r := Recipe{Name: "t.chmod", Final: Scratch().
		Copy("hello.sh", "/usr/local/bin/", Chmod(0o755)).
		CopyFrom(build, "/etc/hostname", "/h", Chmod(0o4750)).
		Copy("hello.c", "/"), Cmd: Exec("x")}
	if got := modeOf(r); !slices.Equal(got, []int32{0o755, 0o4750, -1}) {
		t.Errorf("copy modes %o", got)
	}
	lines := dockerfileLines(t, r)
	for _, l := range []string{"COPY --chmod=755 hello.sh /usr/local/bin/", "COPY --from=build --chmod=4750 /etc/hostname /h", "COPY hello.c /"} {
		if !slices.Contains(lines, l) {
			t.Errorf("no line %s in %q", l, lines)
		}
	}
	var chmods []int32
	def, _ := frontend(t, r, nil)
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		for _, a := range op.GetFile().GetActions() {
			if c := a.GetCopy(); c != nil {
				chmods = append(chmods, c.Mode)
			}
		}
	}
	if !slices.Equal(chmods, []int32{0o755, 0o4750, -1}) {
		t.Errorf("the frontend's copy modes %o", chmods)
	}
	if Scratch().Copy("a", "b").key() == Scratch().Copy("a", "b", Chmod(0o644)).key() {
		t.Error("a COPY with --chmod has the key of one without")
	}
	if err := (Recipe{Name: "bad", Final: Scratch().Copy("a", "b", Chmod(0o10000))}).Validate(); err == nil {
		t.Error("Chmod(0o10000) validates")
	}
}

func TestRunOptions(t *testing.T) {
	r := Recipe{Name: "t.run", Final: From(Golang).Run("go build ./...",
		CacheMount("/root/.cache/go-build", "gocache", SharingLocked()),
		CacheMount("/go/pkg/mod/", ""),
		NoNetwork()).Run("go vet ./..."), Cmd: Exec("x")}
	ex := execs(t, r, DefaultSources())
	if len(ex) != 2 {
		t.Fatalf("%d execs", len(ex))
	}
	build, vet := ex[0], ex[1]
	if build.Network != pb.NetMode_NONE || vet.Network != pb.NetMode_UNSET {
		t.Errorf("networks %v, %v; want none for the first RUN only", build.Network, vet.Network)
	}
	caches := map[string]*pb.CacheOpt{}
	for _, m := range build.Mounts {
		if m.MountType == pb.MountType_CACHE {
			caches[m.Dest] = m.CacheOpt
		}
	}
	if c := caches["/root/.cache/go-build"]; c == nil || c.ID != "gocache" || c.Sharing != pb.CacheSharingOpt_LOCKED {
		t.Errorf("go-build cache %+v", c)
	}
	if c := caches["/go/pkg/mod/"]; c == nil || c.ID != "/go/pkg/mod" || c.Sharing != pb.CacheSharingOpt_SHARED {
		t.Errorf("module cache %+v (an empty id is the target, as in a Dockerfile)", c)
	}
	if len(caches) != 2 {
		t.Errorf("cache mounts %v", caches)
	}
	want := "RUN --mount=type=cache,target=/root/.cache/go-build,id=gocache,sharing=locked --mount=type=cache,target=/go/pkg/mod/ --network=none go build ./..."
	if lines := dockerfileLines(t, r); !slices.Contains(lines, want) || !slices.Contains(lines, "RUN go vet ./...") {
		t.Errorf("RUN lines %q, want %s", lines, want)
	}
	// The frontend makes the same exec: no network, the same mounts (its
	// ids under its namespace, "/" by default).
	def, _ := frontend(t, r, nil)
	fex := execsOf(t, def)
	if len(fex) != 2 || fex[0].Network != pb.NetMode_NONE || fex[1].Network != pb.NetMode_UNSET {
		t.Fatalf("frontend execs %v", fex)
	}
	fcaches := map[string]*pb.CacheOpt{}
	for _, m := range fex[0].Mounts {
		if m.MountType == pb.MountType_CACHE {
			fcaches[m.Dest] = m.CacheOpt
		}
	}
	for dest, c := range caches {
		if f := fcaches[dest]; f == nil || f.ID != "/"+c.ID || f.Sharing != c.Sharing {
			t.Errorf("cache at %s: frontend %+v, recipe %+v", dest, f, c)
		}
	}

	// A stage's own cache at GOCACHE's place wins over the shared one.
	cached := DefaultSources()
	cached.CompilerCache = true
	own := Recipe{Name: "t.own", Final: Scratch().CopyFrom(From(Golang).Run("go build", CacheMount(GoBuildCache, "mine")), "/go/hello", "/")}
	if m := cacheMounts(t, own, cached); len(m) != 1 || m["go build"].CacheOpt.ID != "mine" { // cache_test.go
		t.Errorf("with CompilerCache and a cache of its own: %v", m)
	}

	for _, opt := range []RunOption{CacheMount("rel/dir", ""), CacheMount("/", "x")} {
		if err := (Recipe{Name: "bad", Final: From(Debian).Run("true", opt)}).Validate(); err == nil {
			t.Error("a cache mount target that is not an absolute path below / validates")
		}
	}
	if err := (Recipe{Name: "bad", Final: From(Debian).Run("true", CacheMount("/a", "x"), CacheMount("/a/", "y"))}).Validate(); err == nil {
		t.Error("two cache mounts at one target validate")
	}
	if _, err := (Recipe{Name: "bad", Final: From(Debian).Run("true", CacheMount("/a", "x,y"))}).RenderDockerfile(); !errors.Is(err, ErrNoDockerfile) {
		t.Errorf("a cache id with a comma: %v", err)
	}
	if From(Debian).Run("x").key() == From(Debian).Run("x", NoNetwork()).key() {
		t.Error("a RUN with --network=none has the key of one without")
	}
}

func TestRaw(t *testing.T) {
	touch := func(st llb.State) llb.State { return st.File(llb.Mkfile("/made-raw", 0o644, []byte("hi"))) }
	r := Recipe{Name: "t.raw", Final: Scratch().CopyFrom(From(Debian).Raw("touch", touch), "/made-raw", "/"), Cmd: Exec("x")}
	found := false
	for _, a := range fileActions(t, r, DefaultSources()) {
		if m := a.GetMkfile(); m != nil && m.Path == "/made-raw" && string(m.Data) == "hi" {
			found = true
		}
	}
	if !found {
		t.Error("the raw step's file is not in the LLB")
	}
	_, err := r.RenderDockerfile()
	if !errors.Is(err, ErrNoDockerfile) || !strings.Contains(err.Error(), `Raw("touch")`) || !strings.Contains(err.Error(), "t.raw") {
		t.Errorf("RenderDockerfile: %v; want ErrNoDockerfile naming the step and the recipe", err)
	}
	bad := Recipe{Name: "t.raw-nil", Final: Scratch().Raw("nothing", nil)}
	if err := bad.Validate(); err == nil {
		t.Error("a Raw step with no function validates")
	}
	if _, err := bad.State(DefaultSources()).Marshal(context.Background()); err == nil {
		t.Error("a Raw step with no function marshals")
	}
}

func TestPlatform(t *testing.T) {
	r := Recipe{Name: "t.platform", Final: Scratch().CopyFrom(From(GCC).Run("true"), "/etc/hostname", "/"), Cmd: Exec("x")}
	arm := DefaultSources()
	arm.Platform = ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	for _, tc := range []struct {
		src  Sources
		arch string
	}{{DefaultSources(), "amd64"}, {arm, "arm64"}} {
		def := mustDef(t, r, tc.src)
		n := 0
		for _, dt := range def.Def {
			var op pb.Op
			if err := op.UnmarshalVT(dt); err != nil {
				t.Fatal(err)
			}
			if op.GetSource() == nil && op.GetExec() == nil {
				continue // file ops run on any platform: they carry none
			}
			n++
			if op.Platform == nil || op.Platform.Architecture != tc.arch || op.Platform.OS != "linux" {
				t.Errorf("%s: op %T on %v", tc.arch, op.Op, op.Platform)
			}
		}
		if n < 2 {
			t.Errorf("%s: %d ops", tc.arch, n)
		}
	}
}

// Relative WORKDIRs: under the previous one, or, first in an image
// stage, under the image's own working directory once resolved.
func TestRelativeWorkdir(t *testing.T) {
	mkdirs := func(r Recipe, src Sources) []string {
		var out []string
		for _, a := range fileActions(t, r, src) {
			if m := a.GetMkdir(); m != nil {
				out = append(out, m.Path)
			}
		}
		return out
	}
	withImages := Sources{Context: SamplesSource(), Resolver: fakeImages{}} // dockerfile_test.go: golang's WORKDIR is /go
	r := Recipe{Final: From(Golang).Workdir("src").Workdir("b")}
	if got := mkdirs(r, withImages); !slices.Equal(got, []string{"/go/src", "/go/src/b"}) {
		t.Errorf("mkdirs with the image's WORKDIR: %q", got)
	}
	if got := mkdirs(r, DefaultSources()); !slices.Equal(got, []string{"/src", "/src/b"}) {
		t.Errorf("mkdirs without a resolver: %q", got)
	}
	if got := mkdirs(Recipe{Final: Scratch().Workdir("a").Workdir("/").Workdir("b")}, DefaultSources()); !slices.Equal(got, []string{"/a", "/b"}) {
		t.Errorf("mkdirs on scratch: %q", got)
	}
	if got := r.Config().WorkingDir; got != "src/b" {
		t.Errorf("Config().WorkingDir = %q, want src/b (relative to the base's)", got)
	}
	base := ocispecs.Image{}
	base.Config.WorkingDir = "/go"
	if got := r.ImageConfig(base).Config.WorkingDir; got != "/go/src/b" {
		t.Errorf("ImageConfig WorkingDir = %q", got)
	}
}

func TestConfigIsTheFinalStage(t *testing.T) {
	build := From(Golang).Env("CGO_ENABLED", "0").User("builder").Label("stage", "build").Expose("1").Workdir("/src")
	r := Recipe{Final: From(Debian).CopyFrom(build, "/src", "/").Env("A", "1").Env("B", "2").Env("A", "3"), Cmd: Shell("run it")}
	cfg := r.Config()
	if !slices.Equal(cfg.Env, []string{"A=3", "B=2"}) || cfg.User != "" || cfg.Labels != nil || cfg.ExposedPorts != nil || cfg.WorkingDir != "" || cfg.Entrypoint != nil {
		t.Errorf("Config carries what the build stage set, or Env is wrong: %+v", cfg)
	}
	if !slices.Equal(cfg.Cmd, []string{"/bin/sh", "-c", "run it"}) {
		t.Errorf("Cmd %q", cfg.Cmd)
	}
	if (Recipe{Final: Scratch()}).Config().Cmd != nil {
		t.Error("a recipe with no Cmd sets one")
	}
}
