// Package bake generates the `docker buildx bake` fallback of the recipe
// catalog: a docker-bake.hcl with one target per recipe and the Dockerfiles
// those targets build, rendered from the same stages as the LLB
// (llbdefs.Recipe.Dockerfile). A Docker user builds the matrix with
// `docker buildx bake` and no minikit binary; minikit itself solves the
// LLB directly.
package bake

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/minikit/minikit/internal/atomicfile"
	"github.com/minikit/minikit/pkg/llbdefs"
)

// Names of the generated files and groups.
const (
	// File is the bake file, at the repository root.
	File = "docker-bake.hcl"
	// DefaultDockerfileDir holds one Dockerfile per recipe, next to File.
	DefaultDockerfileDir = "dockerfiles"
	// DefaultContext is the build context, relative to File: the samples.
	DefaultContext = "samples"

	GroupDefault          = "default"           // every recipe expected to build
	GroupExpectedFailures = "expected-failures" // recipes kept to show a failing build
	GroupStandIns         = "standins"          // buildable offline on the stand-in images
)

// DockerfileSuffix ends every generated Dockerfile's name.
const DockerfileSuffix = ".Dockerfile"

// PlatformsVariable is the bake variable every target's platforms follow:
// comma-separated platforms (`PLATFORMS=linux/amd64,linux/arm64 docker
// buildx bake`); empty, the default, leaves each target's platforms empty
// and bake builds for the builder's own platform.
const PlatformsVariable = "PLATFORMS"

type options struct {
	dockerfileDir string
	context       string
	platforms     []string
}

// An Option changes where Generate says things are.
type Option func(*options)

// WithDockerfileDir sets the directory of the Dockerfiles, relative to the
// bake file (default "dockerfiles").
func WithDockerfileDir(dir string) Option { return func(o *options) { o.dockerfileDir = dir } }

// WithContext sets the build context, relative to the bake file (default
// "samples").
func WithContext(dir string) Option { return func(o *options) { o.context = dir } }

// WithPlatforms sets the default of the PLATFORMS variable, what the
// targets are built for when the variable is not set: OS/ARCH[/VARIANT]
// platforms such as "linux/amd64" and "linux/arm64". Without it the
// default is empty: the builder's own platform.
func WithPlatforms(platforms ...string) Option {
	return func(o *options) { o.platforms = append(o.platforms, platforms...) }
}

// platformSyntax is what WithPlatforms accepts: OS/ARCH[/VARIANT].
var platformSyntax = regexp.MustCompile(`^[a-z0-9_]+/[a-z0-9_]+(/[a-z0-9_]+)?$`)

func makeOptions(opts []Option) (options, error) {
	o := options{dockerfileDir: DefaultDockerfileDir, context: DefaultContext}
	for _, f := range opts {
		f(&o)
	}
	for _, p := range o.platforms {
		if !platformSyntax.MatchString(p) {
			return o, fmt.Errorf("bake: platform %q: want OS/ARCH[/VARIANT], such as linux/arm64", p)
		}
	}
	for _, p := range []string{o.dockerfileDir, o.context} {
		if p == "" || path.IsAbs(p) || p != path.Clean(p) || strings.HasPrefix(p, "../") {
			return o, fmt.Errorf("bake: %q must be a clean relative path inside the repository", p)
		}
	}
	return o, nil
}

// targetNameChars is what buildx accepts in a target or group name.
var targetNameChars = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// TargetName is a recipe's bake target: its name with dots (not allowed in
// target names) replaced by underscores, which no recipe name holds.
func TargetName(recipe string) string { return strings.ReplaceAll(recipe, ".", "_") }

// DockerfilePath is where a recipe's Dockerfile is written, relative to
// the bake file.
func DockerfilePath(dir, recipe string) string { return path.Join(dir, recipe+DockerfileSuffix) }

// Generate renders the bake file and the Dockerfiles for recipes. The
// Dockerfiles are keyed by their path relative to the bake file
// (dockerfiles/NAME.Dockerfile). The output depends on nothing but its
// arguments.
func Generate(recipes []llbdefs.Recipe, opts ...Option) (hcl []byte, dockerfiles map[string][]byte, err error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, nil, err
	}
	if len(recipes) == 0 {
		return nil, nil, errors.New("bake: no recipes")
	}
	dockerfiles = make(map[string][]byte, len(recipes))
	taken := map[string]string{} // target or group name -> what took it
	claim := func(name, what string) error {
		if !targetNameChars.MatchString(name) {
			return fmt.Errorf("bake: %s: %q is not a valid target name (%s)", what, name, targetNameChars)
		}
		if prev, ok := taken[name]; ok {
			return fmt.Errorf("bake: %s and %s have the same name %q", prev, what, name)
		}
		taken[name] = what
		return nil
	}
	for _, g := range []string{GroupDefault, GroupExpectedFailures, GroupStandIns} {
		if err := claim(g, "group "+g); err != nil {
			return nil, nil, err
		}
	}

	var def, failing, standins []string
	var programs []string
	byProgram := map[string][]string{}
	for _, r := range recipes {
		t := TargetName(r.Name)
		if err := claim(t, "recipe "+r.Name); err != nil {
			return nil, nil, err
		}
		text, err := r.RenderDockerfile()
		if err != nil {
			return nil, nil, fmt.Errorf("bake: %w", err)
		}
		dockerfiles[DockerfilePath(o.dockerfileDir, r.Name)] = []byte(text)
		if r.ExpectBuildFailure() {
			// Kept out of every other group: bake stops all targets when
			// one fails.
			failing = append(failing, t)
			continue
		}
		def = append(def, t)
		if r.BuildsOffline() {
			standins = append(standins, t)
		}
		p := r.Program()
		if _, ok := byProgram[p]; !ok {
			programs = append(programs, p)
		}
		byProgram[p] = append(byProgram[p], t)
	}
	for _, p := range programs {
		if err := claim(p, "group "+p); err != nil {
			return nil, nil, err
		}
	}

	var b bytes.Buffer
	writeHeader(&b)
	writePlatformsVariable(&b, o.platforms)
	writeGroup(&b, GroupDefault, "Every recipe expected to build", def)
	writeGroup(&b, GroupExpectedFailures, "Recipes kept to show a build that fails (build them alone)", failing)
	writeGroup(&b, GroupStandIns, "Recipes the offline stand-in base images reproduce", standins)
	for _, p := range programs {
		writeGroup(&b, p, "The "+p+" recipes expected to build", byProgram[p])
	}
	// Relative to the context, as buildx resolves a target's dockerfile.
	up := strings.Repeat("../", strings.Count(o.context, "/")+1)
	for _, r := range recipes {
		fmt.Fprintf(&b, "\ntarget %s {\n", hclString(TargetName(r.Name)))
		if d := description(r); d != "" {
			fmt.Fprintf(&b, "  description = %s\n", hclString(d))
		}
		fmt.Fprintf(&b, "  context     = %s\n", hclString(o.context))
		fmt.Fprintf(&b, "  dockerfile  = %s\n", hclString(up+DockerfilePath(o.dockerfileDir, r.Name)))
		fmt.Fprintf(&b, "  platforms   = %s == \"\" ? [] : split(\",\", %s)\n", PlatformsVariable, PlatformsVariable)
		fmt.Fprintf(&b, "  tags        = [%s]\n", hclString("minikit:"+r.Name))
		b.WriteString("}\n")
	}
	return b.Bytes(), dockerfiles, nil
}

func writeHeader(b *bytes.Buffer) {
	b.WriteString(`# Generated by ` + "`minikit bake`" + ` from the recipes in pkg/llbdefs (the same stages
# minikit compiles to LLB). Never edit by hand: change the recipes and run
# ` + "`minikit bake`" + ` again (a test fails while this file is out of date).
#
# For Docker users, from the repository root:
#   docker buildx bake                     every recipe expected to build
#   docker buildx bake standins            the recipes the offline stand-ins reproduce
#   docker buildx bake hello-go            one program's recipes
#   docker buildx bake hello-go_golang_scratch --load   one recipe, into docker images
#   docker buildx bake expected-failures   the recipe kept to show a failing build
#   PLATFORMS=linux/amd64,linux/arm64 docker buildx bake standins   for these platforms
# Targets are the recipe names with dots as underscores; images are tagged
# minikit:RECIPE. The expected failure is in no other group: bake cancels
# every target when one fails.
`)
}

// writePlatformsVariable declares PLATFORMS, with platforms as its default.
func writePlatformsVariable(b *bytes.Buffer, platforms []string) {
	fmt.Fprintf(b, "\nvariable %s {\n", hclString(PlatformsVariable))
	fmt.Fprintf(b, "  description = %s\n", hclString("Platforms every target is built for, comma-separated (linux/amd64,linux/arm64); empty: the builder's own"))
	fmt.Fprintf(b, "  default     = %s\n", hclString(strings.Join(platforms, ",")))
	b.WriteString("}\n")
}

func writeGroup(b *bytes.Buffer, name, desc string, targets []string) {
	fmt.Fprintf(b, "\ngroup %s {\n", hclString(name))
	fmt.Fprintf(b, "  description = %s\n", hclString(desc))
	if len(targets) == 0 {
		b.WriteString("  targets     = []\n}\n")
		return
	}
	b.WriteString("  targets = [\n")
	for _, t := range targets {
		fmt.Fprintf(b, "    %s,\n", hclString(t))
	}
	b.WriteString("  ]\n}\n")
}

// description is a target's one-line summary: the recipe's name and what
// it shows.
func description(r llbdefs.Recipe) string {
	d := r.Name
	switch r.Expect {
	case llbdefs.Works:
		d += ": works"
	case llbdefs.Fails:
		d += ": starts and fails"
	case llbdefs.CannotStart:
		d += ": cannot start"
	case llbdefs.BuildFails:
		d += ": the build fails"
	}
	if r.Why != "" {
		d += " (" + strings.Join(strings.Fields(r.Why), " ") + ")"
	}
	return d
}

// hclString quotes s as an HCL string literal, template sequences escaped.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// wanted is every generated file, by path relative to the repository.
func wanted(recipes []llbdefs.Recipe, opts []Option) (options, map[string][]byte, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return options{}, nil, err
	}
	hcl, dockerfiles, err := Generate(recipes, opts...)
	if err != nil {
		return options{}, nil, err
	}
	want := map[string][]byte{File: hcl}
	for p, dt := range dockerfiles {
		want[p] = dt
	}
	return o, want, nil
}

// Write generates the files and writes them under root (the repository):
// the bake file and the Dockerfiles, each replaced atomically and only if
// it changed; Dockerfiles of recipes that no longer exist are removed. It
// returns the paths it changed, relative to root.
func Write(root string, recipes []llbdefs.Recipe, opts ...Option) (changed []string, err error) {
	o, want, err := wanted(recipes, opts)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, filepath.FromSlash(o.dockerfileDir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bake: %w", err)
	}
	for _, p := range sortedKeys(want) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if old, err := os.ReadFile(full); err == nil && bytes.Equal(old, want[p]) {
			continue
		}
		if err := atomicfile.WriteFile(full, want[p], 0o644); err != nil {
			return changed, fmt.Errorf("bake: write %s: %w", p, err)
		}
		changed = append(changed, p)
	}
	stale, err := staleDockerfiles(root, o.dockerfileDir, want)
	if err != nil {
		return changed, err
	}
	for _, p := range stale {
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			return changed, fmt.Errorf("bake: remove stale %s: %w", p, err)
		}
		changed = append(changed, p)
	}
	return changed, nil
}

// Check compares the files under root with what Generate produces and
// returns the paths that differ, are missing or are stale, relative to
// root; none means the checked-in files are up to date.
func Check(root string, recipes []llbdefs.Recipe, opts ...Option) (outdated []string, err error) {
	o, want, err := wanted(recipes, opts)
	if err != nil {
		return nil, err
	}
	for _, p := range sortedKeys(want) {
		old, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			outdated = append(outdated, p+" (missing)")
		case err != nil:
			return nil, fmt.Errorf("bake: %w", err)
		case !bytes.Equal(old, want[p]):
			outdated = append(outdated, p)
		}
	}
	stale, err := staleDockerfiles(root, o.dockerfileDir, want)
	if err != nil {
		return nil, err
	}
	for _, p := range stale {
		outdated = append(outdated, p+" (no such recipe)")
	}
	return outdated, nil
}

// staleDockerfiles lists the generated-looking files in the Dockerfile
// directory that Generate did not produce.
func staleDockerfiles(root, dir string, want map[string][]byte) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bake: %w", err)
	}
	var out []string
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		if _, ok := want[p]; !ok && !e.IsDir() && strings.HasSuffix(e.Name(), DockerfileSuffix) {
			out = append(out, p)
		}
	}
	return out, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
