package llbdefs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// The step interpreter: one type per step kind, each knowing everything
// about itself. A new step is a new type here and a Stage method in
// stage.go; nothing else switches on what a step is.
type step interface {
	// check reports what makes the step unusable (a port that does not
	// parse, a mode out of range); nil for a step that compiles.
	check() error
	// apply compiles the step onto st, in the stage c is compiling.
	apply(st llb.State, c *compiler) llb.State
	// configure changes an image config as the step in a final stage
	// does (ENV, WORKDIR, USER, ENTRYPOINT, LABEL, EXPOSE); the others
	// leave it alone.
	configure(cfg *ocispecs.ImageConfig)
	// key identifies the step by its content (Stage.key).
	key() string
	// line writes the step's Dockerfile line, naming the stages it copies
	// from with names; an error wrapping ErrNoDockerfile when a Dockerfile
	// cannot say it.
	line(names map[string]stageRef) (string, error)
}

// dependent is a step that reads other stages (COPY --from).
type dependent interface {
	dependsOn() []Stage
}

// ErrNoDockerfile is wrapped by the RenderDockerfile errors of recipes a
// Dockerfile cannot express: a Raw step, or a value the Dockerfile syntax
// cannot carry.
var ErrNoDockerfile = errors.New("cannot be written in a Dockerfile")

// keyOf is a step's key: its kind and its fields, each after a NUL.
func keyOf(kind string, fields ...string) string {
	var b strings.Builder
	b.WriteString("\x00" + kind)
	for _, f := range fields {
		b.WriteString("\x00" + f)
	}
	return b.String()
}

// Step kinds in keys. The first four are the numbers earlier versions
// wrote, so that the keys of the catalog's stages stay what they were.
const (
	kindCopy       = "0"
	kindRun        = "1"
	kindEnv        = "2"
	kindWorkdir    = "3"
	kindUser       = "USER"
	kindEntrypoint = "ENTRYPOINT"
	kindLabel      = "LABEL"
	kindExpose     = "EXPOSE"
	kindArg        = "ARG"
	kindRaw        = "RAW"
)

// ---- COPY

// A CopyOption changes how Copy and CopyFrom copy.
type CopyOption func(*copyOpts)

type copyOpts struct {
	chmod    fs.FileMode
	hasChmod bool
}

func copyOptions(opts []CopyOption) copyOpts {
	var o copyOpts
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// Chmod sets the mode of what is copied (COPY --chmod=755): Unix mode
// bits, 0 to 07777, as the Dockerfile's octal number; 0o755 is rwxr-xr-x.
func Chmod(mode fs.FileMode) CopyOption {
	return func(o *copyOpts) { o.chmod, o.hasChmod = mode, true }
}

func (o copyOpts) check() error {
	if o.hasChmod && o.chmod > 0o7777 {
		return fmt.Errorf("chmod %#o: a mode is 0 to 07777", uint32(o.chmod))
	}
	return nil
}

// flags is the COPY flags, each followed by a blank.
func (o copyOpts) flags() string {
	if !o.hasChmod {
		return ""
	}
	return "--chmod=" + strconv.FormatUint(uint64(o.chmod), 8) + " "
}

func (o copyOpts) info(c *compiler) *llb.CopyInfo {
	ci := &llb.CopyInfo{
		FollowSymlinks:      true,
		CopyDirContentsOnly: true,
		CreateDestPath:      true,
		AllowWildcard:       true,
		AllowEmptyWildcard:  true,
		CreatedTime:         c.src.finalEpoch(),
	}
	if o.hasChmod {
		ci.Mode = &llb.ChmodOpt{Mode: o.chmod}
	}
	return ci
}

// keyFields are the options in a step key: none without options, so that
// a plain COPY keeps its key.
func (o copyOpts) keyFields() []string {
	if f := o.flags(); f != "" {
		return []string{strings.TrimSpace(f)}
	}
	return nil
}

// copyStep copies from the context (COPY).
type copyStep struct {
	src, dst string
	opts     copyOpts
}

func (x copyStep) check() error { return x.opts.check() }

func (x copyStep) apply(st llb.State, c *compiler) llb.State {
	return st.File(llb.Copy(c.src.Context, x.src, x.dst, x.opts.info(c)),
		llb.WithCustomName(c.label+"COPY "+x.opts.flags()+x.src+" "+x.dst))
}

func (copyStep) configure(*ocispecs.ImageConfig) {}

func (x copyStep) key() string {
	return keyOf(kindCopy, append([]string{x.src, x.dst}, x.opts.keyFields()...)...)
}

func (x copyStep) line(map[string]stageRef) (string, error) {
	return "COPY " + x.opts.flags() + copyArgs(x.src, x.dst), nil
}

// copyFromStep copies from another stage (COPY --from).
type copyFromStep struct {
	from     Stage
	src, dst string
	opts     copyOpts
}

func (x copyFromStep) check() error { return x.opts.check() }

func (x copyFromStep) dependsOn() []Stage { return []Stage{x.from} }

func (x copyFromStep) apply(st llb.State, c *compiler) llb.State {
	from := x.from.State(c.src.buildStage()) // cache.go: not the final stage
	return st.File(llb.Copy(from, path.Join("/", x.src), x.dst, x.opts.info(c)),
		llb.WithCustomName(c.label+"COPY --from="+x.from.label()+" "+x.opts.flags()+x.src+" "+x.dst))
}

func (copyFromStep) configure(*ocispecs.ImageConfig) {}

func (x copyFromStep) key() string {
	return keyOf(kindCopy, append([]string{"(" + x.from.key() + ")", x.src, x.dst}, x.opts.keyFields()...)...)
}

func (x copyFromStep) line(names map[string]stageRef) (string, error) {
	return "COPY --from=" + names[x.from.key()].ref + " " + x.opts.flags() + copyArgs(x.src, x.dst), nil
}

// ---- RUN

// A RunOption changes how Run runs its command.
type RunOption func(*runStep)

// A CacheOption changes a cache mount (CacheMount).
type CacheOption func(*cacheMount)

type cacheMount struct {
	target, id string
	sharing    llb.CacheMountSharingMode
}

// CacheMount mounts a persistent BuildKit cache directory at target, an
// absolute path, for the command (RUN --mount=type=cache,target=...,id=...).
// Runs naming the same id share the directory, across recipes and solves
// on one daemon; an empty id is the target's path, as in a Dockerfile.
// The files under target stay out of the stage's layer. Concurrent runs
// share the directory unless an option says otherwise.
//
// The Dockerfile frontend prefixes ids with its namespace and a slash
// ("/" alone by default), so a build of the rendered Dockerfile uses a
// cache of its own.
func CacheMount(target, id string, opts ...CacheOption) RunOption {
	m := cacheMount{target: target, id: id, sharing: llb.CacheMountShared}
	for _, o := range opts {
		if o != nil {
			o(&m)
		}
	}
	return func(r *runStep) { r.mounts = append(r.mounts, m) }
}

// SharingLocked makes concurrent runs take turns with the cache mount
// (sharing=locked).
func SharingLocked() CacheOption {
	return func(m *cacheMount) { m.sharing = llb.CacheMountLocked }
}

// SharingPrivate gives each concurrent run a cache directory of its own
// (sharing=private).
func SharingPrivate() CacheOption {
	return func(m *cacheMount) { m.sharing = llb.CacheMountPrivate }
}

// NoNetwork runs the command with no network but its own loopback
// (RUN --network=none).
func NoNetwork() RunOption {
	return func(r *runStep) { r.noNetwork = true }
}

func (m cacheMount) cacheID() string {
	if m.id == "" {
		return path.Clean(m.target)
	}
	return m.id
}

func (m cacheMount) flag() string {
	f := "--mount=type=cache,target=" + m.target
	if m.id != "" {
		f += ",id=" + m.id
	}
	switch m.sharing {
	case llb.CacheMountLocked:
		f += ",sharing=locked"
	case llb.CacheMountPrivate:
		f += ",sharing=private"
	}
	return f
}

// runStep runs a shell command (RUN).
type runStep struct {
	cmd       string
	mounts    []cacheMount
	noNetwork bool
}

func (x runStep) check() error {
	seen := map[string]bool{}
	for _, m := range x.mounts {
		t := path.Clean(m.target)
		if !path.IsAbs(m.target) || t == "/" {
			return fmt.Errorf("RUN %q: cache mount target %q is not an absolute path below /", x.cmd, m.target)
		}
		if seen[t] {
			return fmt.Errorf("RUN %q: two cache mounts at %s", x.cmd, t)
		}
		seen[t] = true
	}
	return nil
}

// flags is the RUN flags, each followed by a blank.
func (x runStep) flags() string {
	var b strings.Builder
	for _, m := range x.mounts {
		b.WriteString(m.flag() + " ")
	}
	if x.noNetwork {
		b.WriteString("--network=none ")
	}
	return b.String()
}

func (x runStep) apply(st llb.State, c *compiler) llb.State {
	ro := []llb.RunOption{llb.Args([]string{"/bin/sh", "-c", x.cmd}),
		llb.WithCustomName(c.label + "RUN " + x.flags() + x.cmd)}
	if !x.mountsAt(GoBuildCache) {
		ro = append(ro, c.src.compilerCacheMounts(c.stage)...) // cache.go
	}
	for _, m := range x.mounts {
		ro = append(ro, llb.AddMount(m.target, llb.Scratch(), // as given, as the frontend does
			llb.AsPersistentCacheDir(m.cacheID(), m.sharing)))
	}
	if x.noNetwork {
		ro = append(ro, llb.Network(pb.NetMode_NONE))
	}
	return st.Run(ro...).Root()
}

// mountsAt reports whether the step mounts a cache of its own at target.
func (x runStep) mountsAt(target string) bool {
	for _, m := range x.mounts {
		if path.Clean(m.target) == target {
			return true
		}
	}
	return false
}

func (runStep) configure(*ocispecs.ImageConfig) {}

func (x runStep) key() string {
	fields := []string{x.cmd}
	if f := strings.TrimSpace(x.flags()); f != "" {
		fields = append(fields, f)
	}
	return keyOf(kindRun, fields...)
}

func (x runStep) line(map[string]stageRef) (string, error) {
	for _, m := range x.mounts {
		for _, v := range []string{m.target, m.id} {
			if strings.ContainsAny(v, ",\"'$\\") || hasSpace(v) {
				return "", fmt.Errorf("RUN cache mount %q: a comma, quote, $, \\ or blank %w", v, ErrNoDockerfile)
			}
		}
	}
	return runLine(x.flags(), x.cmd), nil
}

// ---- ENV, WORKDIR, USER, ARG

// envStep sets an environment variable (ENV).
type envStep struct{ name, value string }

func (envStep) check() error { return nil }

func (x envStep) apply(st llb.State, _ *compiler) llb.State { return st.AddEnv(x.name, x.value) }

func (x envStep) configure(cfg *ocispecs.ImageConfig) {
	cfg.Env = setEnv(cfg.Env, x.name, x.value)
}

func (x envStep) key() string { return keyOf(kindEnv, x.name, x.value) }

func (x envStep) line(map[string]stageRef) (string, error) {
	k, v := x.name, x.value
	if !dockerfileName(k) {
		return "", fmt.Errorf("ENV key %q %w", k, ErrNoDockerfile)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("ENV %s: a value with a newline %w", k, ErrNoDockerfile)
	}
	return "ENV " + k + "=" + quoteWord(v), nil
}

// dockerfileName reports whether an ENV or ARG name can be written as is.
func dockerfileName(k string) bool {
	return k != "" && !strings.ContainsAny(k, "=\"'\\$") && !hasSpace(k)
}

// hasSpace reports whether s holds a blank, a newline or any other
// Unicode space: the Dockerfile parser splits words at each.
func hasSpace(s string) bool { return strings.IndexFunc(s, unicode.IsSpace) >= 0 }

// workdirStep sets and creates the working directory (WORKDIR).
type workdirStep struct{ dir string }

func (workdirStep) check() error { return nil }

func (x workdirStep) apply(st llb.State, c *compiler) llb.State {
	st = st.Dir(x.dir)
	// What the mkdir needs, read now: one made when the graph is
	// marshalled (below) runs after the stage's later steps were applied.
	user := c.user
	epoch := c.src.finalEpoch()
	name := c.label + "WORKDIR " + x.dir
	mkdir := func(st llb.State, dir, user string) llb.State {
		if dir == "/" {
			return st // as the frontend: / exists
		}
		mo := []llb.MkdirOption{llb.WithParents(true)}
		if user != "" {
			// As the Dockerfile frontend: the directory is the user's. (The
			// frontend also gives it to a base image's USER, which LLB
			// does not expose here: a stage that relies on it says USER.)
			mo = append(mo, llb.WithUser(user))
		}
		if epoch != nil {
			mo = append(mo, llb.WithCreatedTime(*epoch))
		}
		return st.File(llb.Mkdir(dir, 0o755, mo...), llb.WithCustomName(name))
	}
	dir := ""
	switch {
	case path.IsAbs(x.dir):
		dir = path.Join("/", x.dir)
	case c.dir != "":
		dir = path.Join(c.dir, x.dir)
	}
	c.dir = dir
	if dir != "" {
		return mkdir(st, dir, user)
	}
	// A relative WORKDIR first in an image stage: under the image's
	// working directory, known once the image's config is resolved.
	plat := llb.Platform(c.src.platform())
	return st.Async(func(ctx context.Context, st llb.State, _ *llb.Constraints) (llb.State, error) {
		dir, err := st.GetDir(ctx, plat)
		if err != nil {
			return llb.State{}, fmt.Errorf("WORKDIR %s: %w", x.dir, err)
		}
		return mkdir(st, path.Join("/", dir), user), nil
	})
}

func (x workdirStep) configure(cfg *ocispecs.ImageConfig) {
	dir := x.dir
	if !path.IsAbs(dir) && cfg.WorkingDir != "" {
		dir = path.Join(cfg.WorkingDir, dir)
	}
	cfg.WorkingDir = dir
}

func (x workdirStep) key() string { return keyOf(kindWorkdir, x.dir) }

func (x workdirStep) line(map[string]stageRef) (string, error) {
	if strings.ContainsAny(x.dir, "\r\n") {
		return "", fmt.Errorf("WORKDIR %q: a newline %w", x.dir, ErrNoDockerfile)
	}
	return "WORKDIR " + quoteWord(x.dir), nil
}

// userStep sets the user (USER).
type userStep struct{ user string }

func (x userStep) check() error {
	if x.user == "" || hasSpace(x.user) {
		return fmt.Errorf("USER %q: a user is a name or id, optionally :group, with no blanks", x.user)
	}
	return nil
}

func (x userStep) apply(st llb.State, c *compiler) llb.State {
	c.user = x.user
	return st.User(x.user)
}

func (x userStep) configure(cfg *ocispecs.ImageConfig) { cfg.User = x.user }

func (x userStep) key() string { return keyOf(kindUser, x.user) }

func (x userStep) line(map[string]stageRef) (string, error) {
	return "USER " + escapeWord(x.user), nil
}

// argStep declares a build argument (ARG).
type argStep struct{ name, def string }

func (x argStep) check() error {
	if !dockerfileName(x.name) {
		return fmt.Errorf("ARG %q: a name is not empty and holds no =, blank, quote, $ or \\", x.name)
	}
	return nil
}

func (x argStep) apply(st llb.State, c *compiler) llb.State {
	v, ok := c.src.BuildArgs[x.name]
	if !ok {
		v = x.def
	}
	return st.AddEnv(x.name, v) // as the Dockerfile frontend: in the following RUNs' environment
}

func (argStep) configure(*ocispecs.ImageConfig) {}

func (x argStep) key() string { return keyOf(kindArg, x.name, x.def) }

func (x argStep) line(map[string]stageRef) (string, error) {
	if strings.ContainsAny(x.def, "\r\n") {
		return "", fmt.Errorf("ARG %s: a default with a newline %w", x.name, ErrNoDockerfile)
	}
	return "ARG " + x.name + "=" + quoteWord(x.def), nil
}

// ---- ENTRYPOINT, LABEL, EXPOSE: the image config only

// entrypointStep sets the entrypoint (ENTRYPOINT, exec form).
type entrypointStep struct{ args []string }

func (entrypointStep) check() error { return nil }

func (entrypointStep) apply(st llb.State, _ *compiler) llb.State { return st }

// configure sets the entrypoint and, as Docker does, drops the base's
// CMD (the recipe's Cmd is set after the steps).
func (x entrypointStep) configure(cfg *ocispecs.ImageConfig) {
	cfg.Entrypoint = append([]string{}, x.args...)
	cfg.Cmd = nil
}

func (x entrypointStep) key() string { return keyOf(kindEntrypoint, x.args...) }

func (x entrypointStep) line(map[string]stageRef) (string, error) {
	return "ENTRYPOINT " + jsonArray(x.args...), nil
}

// labelStep sets an image label (LABEL).
type labelStep struct{ name, value string }

func (x labelStep) check() error {
	if x.name == "" {
		return errors.New("LABEL: empty key")
	}
	return nil
}

func (labelStep) apply(st llb.State, _ *compiler) llb.State { return st }

func (x labelStep) configure(cfg *ocispecs.ImageConfig) {
	cfg.Labels = maps.Clone(cfg.Labels)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[x.name] = x.value
}

func (x labelStep) key() string { return keyOf(kindLabel, x.name, x.value) }

func (x labelStep) line(map[string]stageRef) (string, error) {
	if strings.ContainsAny(x.name+x.value, "\r\n") {
		return "", fmt.Errorf("LABEL %q: a newline %w", x.name, ErrNoDockerfile)
	}
	if strings.Contains(x.name, "=") {
		// LABEL splits at the first '=', quoted or not.
		return "", fmt.Errorf("LABEL key %q: an '=' %w", x.name, ErrNoDockerfile)
	}
	return "LABEL " + quoteWord(x.name) + "=" + quoteWord(x.value), nil
}

// exposeStep records a listening port (EXPOSE).
type exposeStep struct {
	raw, port string // as given; as parsed ("8080/tcp")
	err       error
}

func (x exposeStep) check() error {
	if x.err != nil {
		return fmt.Errorf("EXPOSE %q: %w", x.raw, x.err)
	}
	return nil
}

func (exposeStep) apply(st llb.State, _ *compiler) llb.State { return st }

func (x exposeStep) configure(cfg *ocispecs.ImageConfig) {
	if x.err != nil {
		return
	}
	cfg.ExposedPorts = maps.Clone(cfg.ExposedPorts)
	if cfg.ExposedPorts == nil {
		cfg.ExposedPorts = map[string]struct{}{}
	}
	cfg.ExposedPorts[x.port] = struct{}{}
}

func (x exposeStep) key() string { return keyOf(kindExpose, x.port) }

func (x exposeStep) line(map[string]stageRef) (string, error) {
	return "EXPOSE " + x.port, nil
}

// ParsePort reads a port as EXPOSE takes it, "8080", "8080/tcp", "53/udp"
// or "9/sctp", and returns it as an image config names it, with its
// protocol: "8080/tcp". The number is 1 to 65535, in decimal.
func ParsePort(s string) (string, error) {
	num, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return "", fmt.Errorf("port %q: protocol %q is not tcp, udp or sctp", s, proto)
	}
	if num == "" || strings.Trim(num, "0123456789") != "" {
		return "", fmt.Errorf("port %q: %q is not a decimal port number", s, num)
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("port %q: the number is 1 to 65535", s)
	}
	return strconv.FormatUint(n, 10) + "/" + proto, nil
}

// ---- Raw LLB

// rawStep applies a function to the LLB state.
type rawStep struct {
	name string
	fn   func(llb.State) llb.State
}

func (x rawStep) check() error {
	if x.name == "" || x.fn == nil {
		return fmt.Errorf("Raw(%q): a raw step needs a name and a function", x.name)
	}
	return nil
}

func (x rawStep) apply(st llb.State, c *compiler) llb.State {
	c.dir = "" // the function may have moved it
	return x.fn(st)
}

func (rawStep) configure(*ocispecs.ImageConfig) {}

func (x rawStep) key() string { return keyOf(kindRaw, x.name) }

func (x rawStep) line(map[string]stageRef) (string, error) {
	return "", fmt.Errorf("step Raw(%q) is raw LLB: it %w", x.name, ErrNoDockerfile)
}
