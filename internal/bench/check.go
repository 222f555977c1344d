package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
	digest "github.com/opencontainers/go-digest"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
	"github.com/minikit/minikit/pkg/timings"
)

// profile reads the run's build profile from its JSON report (solve
// --timings); nil for a mode without one.
func (o output) profile() (*timings.Summary, error) {
	if len(o.report) == 0 {
		return nil, nil
	}
	rep, err := report.ReadJSON(bytes.NewReader(o.report))
	if err != nil {
		return nil, fmt.Errorf("bench: %s: report: %w", o.mode.Describe(), err)
	}
	var named []timings.Named
	for _, r := range rep.Recipes {
		if r.Timings != nil {
			named = append(named, timings.Named{Name: r.Name, Profile: r.Timings})
		}
	}
	if len(named) == 0 {
		return nil, nil
	}
	return timings.Summarize(named), nil
}

// images reads each recipe's measured image from the run's JSON report
// (a run that measured sizes); nil otherwise.
func (o output) images() map[string]*measure.Image {
	if len(o.report) == 0 {
		return nil
	}
	rep, err := report.ReadJSON(bytes.NewReader(o.report))
	if err != nil {
		return nil
	}
	out := map[string]*measure.Image{}
	for _, r := range rep.Recipes {
		if r.Image != nil {
			out[r.Name] = r.Image
		}
	}
	return out
}

// A Check is whether the optimizations changed the images: the manifest
// digest each minikit mode built for every recipe (each mode on a fresh
// daemon), compared.
type Check struct {
	// Modes are the minikit modes compared.
	Modes []Mode
	// Recipes are the verdicts, one per recipe.
	Recipes []RecipeCheck
	// OK is set when every recipe passed.
	OK bool
}

// A RecipeCheck is one recipe's verdict.
type RecipeCheck struct {
	Name string
	// Digests are the manifest digests, by mode.
	Digests map[Mode]string
	// Verdict is SameDigest, SameFiles, SameBuild or Differs.
	Verdict Verdict
	// Why explains a SameFiles, SameBuild or Differs verdict.
	Why string
}

// A Verdict is how a recipe's images compare across the modes.
type Verdict string

const (
	// SameDigest: every mode built the same manifest.
	SameDigest Verdict = "same digest"
	// SameFiles: the digests differ, and the layers that differ hold as
	// many entries and files, of the same bytes (the images' largest
	// files the same too, as measured): a layer the recipe makes at build
	// time, dated by the build's clock. The verdict says which layers, and
	// whether an option changes the recipe's LLB.
	SameFiles Verdict = "same files"
	// SameBuild: the digests differ, the images were not both measured,
	// and no option changes the recipe's LLB: BuildKit ran the same
	// steps, whose files differ only by build time.
	SameBuild Verdict = "same build"
	// Differs: the images differ in a way the above do not explain.
	Differs Verdict = "differs"
)

// modeOptions are the llbdefs options a minikit mode compiles with.
func modeOptions(m Mode) []llbdefs.TargetOption {
	switch m {
	case Solve, SolveLayers, MinikitCache:
		return []llbdefs.TargetOption{llbdefs.CompilerCache(true)}
	case SolveLocked:
		return []llbdefs.TargetOption{llbdefs.CompilerCache(true), llbdefs.CompilerCacheSeed(false)}
	}
	return []llbdefs.TargetOption{llbdefs.CompilerCache(false)}
}

// definitions returns each recipe's LLB definition digest as mode m
// compiles it (for a fixed epoch and the default platform, no image
// resolver: what matters is whether the modes' options change it).
func definitions(recipes []llbdefs.Recipe, m Mode, contextDir string) (map[string]digest.Digest, error) {
	ts, err := llbdefs.Targets(recipes, append([]llbdefs.TargetOption{llbdefs.ContextDir(contextDir)}, modeOptions(m)...)...)
	if err != nil {
		return nil, err
	}
	epoch := time.Unix(0, 0)
	out := map[string]digest.Digest{}
	for _, t := range ts {
		st, err := t.LLB(context.Background(), runnerInput(epoch))
		if err != nil {
			return nil, err
		}
		def, err := st.Marshal(context.Background(), llb.Platform(llbdefs.Platform()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		var all []byte
		for _, dt := range def.Def {
			all = append(all, dt...)
		}
		out[t.Name] = digest.FromBytes(all)
	}
	return out, nil
}

// check compares what the minikit modes built (each mode's first cold
// run, or its untimed filling run).
func check(recipes []llbdefs.Recipe, built map[Mode]output, contextDir string) *Check {
	c := &Check{OK: true}
	for _, m := range Modes() {
		if _, ok := built[m]; ok && m.minikit() {
			c.Modes = append(c.Modes, m)
		}
	}
	if len(c.Modes) < 2 {
		return nil // nothing to compare
	}
	defs := map[Mode]map[string]digest.Digest{}
	images := map[Mode]map[string]*measure.Image{}
	var defErr error
	for _, m := range c.Modes {
		d, err := definitions(recipes, m, contextDir)
		if err != nil && defErr == nil {
			defErr = err
		}
		defs[m] = d
		images[m] = built[m].images()
	}
	for _, r := range recipes {
		rc := RecipeCheck{Name: r.Name, Digests: map[Mode]string{}}
		for _, m := range c.Modes {
			rc.Digests[m] = built[m].digests[r.Name]
		}
		rc.Verdict, rc.Why = verdict(r.Name, c.Modes, rc.Digests, defs, images, defErr)
		if rc.Verdict == Differs {
			c.OK = false
		}
		c.Recipes = append(c.Recipes, rc)
	}
	return c
}

// verdict compares one recipe across the modes.
func verdict(name string, modes []Mode, digests map[Mode]string, defs map[Mode]map[string]digest.Digest,
	images map[Mode]map[string]*measure.Image, defErr error) (Verdict, string) {
	var missing []string
	for _, m := range modes {
		if digests[m] == "" {
			missing = append(missing, string(m))
		}
	}
	if len(missing) > 0 {
		return Differs, "no image digest from " + strings.Join(missing, ", ")
	}
	first := modes[0]
	var other []Mode // the modes whose digest is not first's
	for _, m := range modes[1:] {
		if digests[m] != digests[first] {
			other = append(other, m)
		}
	}
	if len(other) == 0 {
		return SameDigest, ""
	}
	llb := "no option changes its LLB"
	if defErr != nil {
		llb = "its LLB could not be compared: " + defErr.Error()
	} else {
		var changed []string
		for _, m := range other {
			if defs[m][name] != defs[first][name] {
				changed = append(changed, string(m))
			}
		}
		if len(changed) > 0 {
			llb = strings.Join(changed, ", ") + " compile(s) it differently from " + string(first)
		}
	}
	a := images[first][name]
	var layers []string
	for _, m := range other {
		b := images[m][name]
		if a == nil || b == nil {
			if llb == "no option changes its LLB" {
				return SameBuild, fmt.Sprintf("digests differ (%s and %s), not measured by both; %s: BuildKit ran the same steps", first, m, llb)
			}
			return Differs, fmt.Sprintf("digests differ (%s and %s), not measured by both, and %s", first, m, llb)
		}
		diff, why := compareLayers(a, b)
		if why != "" {
			return Differs, fmt.Sprintf("%s and %s: %s (%s)", first, m, why, llb)
		}
		for _, l := range diff {
			if !slices.Contains(layers, l) {
				layers = append(layers, l)
			}
		}
	}
	return SameFiles, fmt.Sprintf("layers whose bytes differ between builds, holding the same files: %s (%s)", strings.Join(layers, "; "), llb)
}

// compareLayers compares two measurements layer by layer. It returns the
// layers whose diff IDs differ while holding as many entries and files,
// of the same bytes (named by what created them), and why the images'
// files differ, "" when they do not (same layer counts, same totals,
// same largest files).
func compareLayers(a, b *measure.Image) (differing []string, why string) {
	if len(a.Layers) != len(b.Layers) {
		return nil, fmt.Sprintf("%d layers against %d", len(a.Layers), len(b.Layers))
	}
	for i := range a.Layers {
		x, y := a.Layers[i], b.Layers[i]
		if x.Entries != y.Entries || x.Files != y.Files || x.FileBytes != y.FileBytes {
			return nil, fmt.Sprintf("layer %d: %d entries, %d files, %d bytes against %d, %d, %d", i, x.Entries, x.Files, x.FileBytes, y.Entries, y.Files, y.FileBytes)
		}
		if x.DiffID != y.DiffID {
			label := x.CreatedBy
			if label == "" {
				label = fmt.Sprintf("layer %d", i)
			}
			differing = append(differing, label)
		}
	}
	if a.Files != b.Files || a.FileBytes != b.FileBytes {
		return nil, fmt.Sprintf("%d files of %d bytes against %d of %d", a.Files, a.FileBytes, b.Files, b.FileBytes)
	}
	key := func(fs []measure.File) []string {
		var out []string
		for _, f := range fs {
			out = append(out, fmt.Sprintf("%s %d %d", f.Path, f.Size, f.Layer))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(key(a.Largest), key(b.Largest)) {
		return nil, "not the same largest files"
	}
	return differing, ""
}

func joinModes(ms []Mode) string {
	var s []string
	for _, m := range ms {
		s = append(s, string(m))
	}
	return strings.Join(s, " and ")
}

// counts returns how many recipes got each verdict.
func (c *Check) counts() map[Verdict]int {
	out := map[Verdict]int{}
	for _, r := range c.Recipes {
		out[r.Verdict]++
	}
	return out
}

// summary is the check in a line.
func (c *Check) summary() string {
	n := c.counts()
	var parts []string
	for _, v := range []Verdict{SameDigest, SameFiles, SameBuild, Differs} {
		if n[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[v], v))
		}
	}
	return fmt.Sprintf("%s (%s compared)", strings.Join(parts, ", "), joinModes(c.Modes))
}

// runnerInput is what a target's LLB is compiled with for the check.
func runnerInput(epoch time.Time) runner.BuildInput {
	return runner.BuildInput{Platform: llbdefs.Platform(), Epoch: &epoch}
}
