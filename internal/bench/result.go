package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikit/minikit/pkg/timings"
)

// Result is a finished benchmark.
type Result struct {
	Recipes    []string
	CPUs       int
	Buildkitd  string // the daemon's version
	Export     string // what every client exports
	Started    time.Time
	Wall       time.Duration // the whole benchmark
	LoadBefore [3]float64    // load averages (1, 5, 15 min) before
	LoadAfter  [3]float64    // and after
	Rows       []*Row
	Ratios     []Ratio
	Targets    []Target
	// Profiles are the build profiles of the modes that record one (solve
	// --timings), from their first cold run.
	Profiles map[Mode]*timings.Summary
	// Check compares the images the minikit modes built; nil with fewer
	// than two minikit modes.
	Check *Check
}

// A Row is one mode in one state: every run, and their median.
type Row struct {
	Mode    Mode
	State   State
	Command string
	Runs    []Usage
	// Median takes the median of each field on its own.
	Median Usage
}

// A Ratio compares the median wall times of two modes in one state, and
// their CPU times (client and daemon): on a machine shared with other
// work, the CPU time a build takes moves less with the load than its
// wall time.
type Ratio struct {
	Of, To Mode
	State  State
	Value  float64 // Of's wall time / To's; NaN when a side was not measured
	CPU    float64 // Of's client + daemon CPU time / To's; NaN when unknown
}

// A Target is one of the goals of the benchmark, and whether the
// measurement meets it.
type Target struct {
	Goal     string
	Measured string
	Met      bool
}

// row returns the row of a mode and state, or nil.
func (r *Result) row(m Mode, s State) *Row {
	for _, x := range r.Rows {
		if x.Mode == m && x.State == s {
			return x
		}
	}
	return nil
}

// ratioPairs are the wall time ratios computed, in the order shown.
var ratioPairs = [][2]Mode{
	{Solve, Bake}, {SolveLayers, Bake}, {SolveLocked, Bake}, {MinikitCache, Bake}, {Minikit, Bake},
	{Solve, SolveLocked}, {SolveLayers, Solve}, {Solve, MinikitCache}, {MinikitCache, Minikit}, {Minikit, Sequential},
}

// finish computes medians, ratios and targets.
func (r *Result) finish() {
	for _, x := range r.Rows {
		x.Median = median(x.Runs)
	}
	for _, p := range ratioPairs {
		for _, s := range States() {
			a, b := r.row(p[0], s), r.row(p[1], s)
			if a == nil || b == nil || len(a.Runs) == 0 || len(b.Runs) == 0 {
				continue
			}
			cpu := math.NaN()
			if ca, cb := a.Median.CPU()+a.Median.DaemonCPU, b.Median.CPU()+b.Median.DaemonCPU; cb > 0 && a.Median.DaemonCPU > 0 && b.Median.DaemonCPU > 0 {
				cpu = ca.Seconds() / cb.Seconds()
			}
			r.Ratios = append(r.Ratios, Ratio{Of: p[0], To: p[1], State: s, Value: a.Median.Wall.Seconds() / b.Median.Wall.Seconds(), CPU: cpu})
		}
	}
	r.Targets = r.targets()
}

func (r *Result) ratio(of, to Mode, s State) (float64, bool) {
	for _, x := range r.Ratios {
		if x.Of == of && x.To == to && x.State == s {
			return x.Value, true
		}
	}
	return 0, false
}

// cpuRatio is the CPU time ratio of of to to in state s.
func (r *Result) cpuRatio(of, to Mode, s State) (float64, bool) {
	for _, x := range r.Ratios {
		if x.Of == of && x.To == to && x.State == s && !math.IsNaN(x.CPU) {
			return x.CPU, true
		}
	}
	return 0, false
}

// targets checks the goals of the benchmark (issue 13) against what was
// measured.
func (r *Result) targets() []Target {
	var out []Target
	if v, ok := r.ratio(Solve, Bake, Cold); ok {
		out = append(out, Target{Goal: "cold minikit solve, sizes measured, at most 0.5 x bake", Measured: r.measured(Solve, Bake, Cold, v), Met: v <= 0.5})
	}
	if v, ok := r.ratio(SolveLayers, Bake, Cold); ok {
		out = append(out, Target{Goal: "cold minikit solve, sizes measured, base layers measured before, at most 0.5 x bake", Measured: r.measured(SolveLayers, Bake, Cold, v), Met: v <= 0.5})
	}
	if v, ok := r.ratio(Solve, Bake, Warm); ok {
		out = append(out, Target{Goal: "warm minikit solve, sizes measured, at most 0.25 x bake", Measured: r.measured(Solve, Bake, Warm, v), Met: v <= 0.25})
	}
	for _, m := range []Mode{Solve, MinikitCache} {
		if v, ok := r.ratio(m, Bake, LongLived); ok {
			n := len(r.row(m, LongLived).Runs)
			out = append(out, Target{Goal: fmt.Sprintf("warm %s on a long-lived daemon (%d alternating pairs) at most 0.25 x bake", m, n),
				Measured: fmt.Sprintf("%.2f x (medians)", v), Met: v <= 0.25})
			break
		}
	}
	if w := r.row(Solve, Warm); w != nil && len(w.Runs) > 0 {
		out = append(out, Target{Goal: "warm minikit solve under 2 s", Measured: fmtDuration(w.Median.Wall), Met: w.Median.Wall < 2*time.Second})
	}
	if r.Check != nil {
		out = append(out, Target{Goal: "the optimizations leave the images as they are", Measured: r.Check.summary(), Met: r.Check.OK})
	}
	var peak int64
	for _, x := range r.Rows {
		if x.Mode.minikit() {
			for _, u := range x.Runs {
				peak = max(peak, u.MaxRSS)
			}
		}
	}
	if peak > 0 {
		out = append(out, Target{Goal: "minikit client memory under 100 MiB", Measured: fmtBytes(peak) + " peak", Met: peak < 100<<20})
	}
	return out
}

// measured says a wall time ratio, with the CPU time ratio when known.
func (r *Result) measured(of, to Mode, s State, v float64) string {
	if c, ok := r.cpuRatio(of, to, s); ok {
		return fmt.Sprintf("%.2f x (CPU time %.2f x)", v, c)
	}
	return fmt.Sprintf("%.2f x", v)
}

// median returns the median of each field (the mean of the middle two
// for an even count).
func median(us []Usage) Usage {
	if len(us) == 0 {
		return Usage{}
	}
	pick := func(f func(Usage) int64) int64 {
		v := make([]int64, len(us))
		for i, u := range us {
			v[i] = f(u)
		}
		slices.Sort(v)
		n := len(v)
		if n%2 == 1 {
			return v[n/2]
		}
		return (v[n/2-1] + v[n/2]) / 2
	}
	loads := make([]float64, len(us))
	for i, u := range us {
		loads[i] = u.Load
	}
	slices.Sort(loads)
	load := loads[len(loads)/2]
	if len(loads)%2 == 0 {
		load = (loads[len(loads)/2-1] + loads[len(loads)/2]) / 2
	}
	return Usage{
		Wall:      time.Duration(pick(func(u Usage) int64 { return int64(u.Wall) })),
		User:      time.Duration(pick(func(u Usage) int64 { return int64(u.User) })),
		Sys:       time.Duration(pick(func(u Usage) int64 { return int64(u.Sys) })),
		MaxRSS:    pick(func(u Usage) int64 { return u.MaxRSS }),
		DaemonCPU: time.Duration(pick(func(u Usage) int64 { return int64(u.DaemonCPU) })),
		Load:      load,
	}
}

// WriteTable writes the result for a terminal.
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d recipes, one buildkitd %s with the offline stand-ins, %d CPUs, load average %.2f before, %.2f after\n",
		len(r.Recipes), r.Buildkitd, r.CPUs, r.LoadBefore[0], r.LoadAfter[0])
	fmt.Fprintf(&b, "export: %s\n", r.Export)
	fmt.Fprintf(&b, "cold: buildkitd restarted on an empty state directory; warm: the same command again at once; long-lived: alternating with bake on the last daemon\n")
	runs := 0
	for _, x := range r.Rows {
		runs = max(runs, len(x.Runs))
	}
	if runs > 1 {
		fmt.Fprintf(&b, "median of the runs (RUNS), each column on its own\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSTATE\tWALL\tCLIENT CPU\tCLIENT MAX RSS\tDAEMON CPU\tLOAD\tRUNS")
	for _, x := range r.Rows {
		if len(x.Runs) == 0 {
			continue
		}
		u := x.Median
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%d\n", x.Command, x.State, fmtDuration(u.Wall), fmtDuration(u.CPU()),
			fmtBytes(u.MaxRSS), fmtDuration(u.DaemonCPU), u.Load, len(x.Runs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Ratios) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RATIO: WALL TIME (CPU TIME, CLIENT + DAEMON)\tCOLD\tWARM\tLONG-LIVED")
		seen := map[[2]Mode]bool{}
		for _, x := range r.Ratios {
			p := [2]Mode{x.Of, x.To}
			if seen[p] {
				continue
			}
			seen[p] = true
			cell := func(s State) string {
				v, ok := r.ratio(x.Of, x.To, s)
				if !ok {
					return "-"
				}
				if c, ok := r.cpuRatio(x.Of, x.To, s); ok {
					return fmt.Sprintf("%.2f (%.2f)", v, c)
				}
				return fmt.Sprintf("%.2f", v)
			}
			fmt.Fprintf(tw, "%s / %s\t%s\t%s\t%s\n", x.Of, x.To, cell(Cold), cell(Warm), cell(LongLived))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Targets) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TARGET\tMEASURED\tMET")
		for _, t := range r.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Goal, t.Measured, met)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if c := r.Check; c != nil {
		fmt.Fprintf(&b, "\nImages with and without each optimization: %s\n", c.summary())
		for _, rc := range c.Recipes {
			if rc.Verdict != SameDigest {
				fmt.Fprintf(&b, "  %s: %s: %s\n", rc.Name, rc.Verdict, rc.Why)
			}
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for _, m := range Modes() {
		p := r.Profiles[m]
		if p == nil {
			continue
		}
		if _, err := fmt.Fprintf(w, "\nThe cold %s run (%s), where its time went:\n", m, m.Describe()); err != nil {
			return err
		}
		for _, f := range []func(io.Writer) error{
			func(w io.Writer) error { return p.WriteTop(w, 10) },
			p.WriteCritical, p.WriteCategories,
		} {
			if err := f(w); err != nil {
				return err
			}
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonUsage is a Usage in the JSON output: seconds and bytes.
type jsonUsage struct {
	WallS      float64 `json:"wall_s"`
	UserS      float64 `json:"user_s"`
	SysS       float64 `json:"sys_s"`
	CPUS       float64 `json:"cpu_s"`
	MaxRSS     int64   `json:"max_rss_bytes"`
	DaemonCPUS float64 `json:"daemon_cpu_s"`
	Load       float64 `json:"load"`
}

func toJSON(u Usage) jsonUsage {
	return jsonUsage{WallS: u.Wall.Seconds(), UserS: u.User.Seconds(), SysS: u.Sys.Seconds(), CPUS: u.CPU().Seconds(),
		MaxRSS: u.MaxRSS, DaemonCPUS: u.DaemonCPU.Seconds(), Load: u.Load}
}

// jsonStep is a step of a profile in the JSON output.
type jsonStep struct {
	Name     string   `json:"name"`
	Category string   `json:"category"`
	Cached   bool     `json:"cached,omitempty"`
	StartS   float64  `json:"start_s"`
	RunningS float64  `json:"running_s"`
	ExtractS float64  `json:"extract_s,omitempty"`
	WaitedS  float64  `json:"waited_s,omitempty"`
	Targets  []string `json:"recipes"`
}

func stepJSON(s timings.RunStep, waited time.Duration) jsonStep {
	return jsonStep{Name: s.Name, Category: string(s.Category), Cached: s.Cached, StartS: s.Start.Seconds(), RunningS: s.Running.Seconds(),
		ExtractS: s.Extract.Seconds(), WaitedS: waited.Seconds(), Targets: s.Targets}
}

// WriteJSON writes the result as one JSON document (fields: README's
// `minikit bench` section).
func (r *Result) WriteJSON(w io.Writer) error {
	type row struct {
		Mode    Mode        `json:"mode"`
		State   State       `json:"state"`
		Command string      `json:"command"`
		Median  jsonUsage   `json:"median"`
		Runs    []jsonUsage `json:"runs"`
	}
	type ratio struct {
		Of    Mode     `json:"of"`
		To    Mode     `json:"to"`
		State State    `json:"state"`
		Wall  *float64 `json:"wall"`
		CPU   *float64 `json:"cpu,omitempty"`
	}
	type target struct {
		Goal     string `json:"goal"`
		Measured string `json:"measured"`
		Met      bool   `json:"met"`
	}
	type category struct {
		Category string  `json:"category"`
		Steps    int     `json:"steps"`
		RunningS float64 `json:"running_s"`
		BusyS    float64 `json:"busy_s"`
	}
	type profile struct {
		Mode           Mode       `json:"mode"`
		WallS          float64    `json:"wall_s"`
		Top            []jsonStep `json:"top"`
		CriticalRecipe string     `json:"critical_recipe"`
		Critical       []jsonStep `json:"critical_path"`
		Categories     []category `json:"categories"`
	}
	type recipeCheck struct {
		Name    string          `json:"name"`
		Verdict Verdict         `json:"verdict"`
		Why     string          `json:"why,omitempty"`
		Digests map[Mode]string `json:"digests"`
	}
	type checkDoc struct {
		Modes   []Mode        `json:"modes"`
		OK      bool          `json:"ok"`
		Recipes []recipeCheck `json:"recipes"`
	}
	doc := struct {
		Recipes    []string   `json:"recipes"`
		CPUs       int        `json:"cpus"`
		Buildkitd  string     `json:"buildkitd"`
		Export     string     `json:"export"`
		Started    time.Time  `json:"started"`
		WallS      float64    `json:"wall_s"`
		LoadBefore [3]float64 `json:"load_before"`
		LoadAfter  [3]float64 `json:"load_after"`
		Rows       []row      `json:"rows"`
		Ratios     []ratio    `json:"ratios"`
		Targets    []target   `json:"targets"`
		Profiles   []profile  `json:"profiles"`
		Check      *checkDoc  `json:"check,omitempty"`
	}{Recipes: r.Recipes, CPUs: r.CPUs, Buildkitd: r.Buildkitd, Export: r.Export, Started: r.Started,
		WallS: r.Wall.Seconds(), LoadBefore: r.LoadBefore, LoadAfter: r.LoadAfter,
		Rows: []row{}, Ratios: []ratio{}, Targets: []target{}, Profiles: []profile{}}
	for _, x := range r.Rows {
		if len(x.Runs) == 0 {
			continue
		}
		jr := row{Mode: x.Mode, State: x.State, Command: x.Command, Median: toJSON(x.Median)}
		for _, u := range x.Runs {
			jr.Runs = append(jr.Runs, toJSON(u))
		}
		doc.Rows = append(doc.Rows, jr)
	}
	for _, x := range r.Ratios {
		jr := ratio{Of: x.Of, To: x.To, State: x.State}
		if !math.IsNaN(x.Value) && !math.IsInf(x.Value, 0) {
			v := x.Value
			jr.Wall = &v
		}
		if !math.IsNaN(x.CPU) && !math.IsInf(x.CPU, 0) {
			v := x.CPU
			jr.CPU = &v
		}
		doc.Ratios = append(doc.Ratios, jr)
	}
	for _, t := range r.Targets {
		doc.Targets = append(doc.Targets, target(t))
	}
	for _, m := range Modes() {
		p := r.Profiles[m]
		if p == nil {
			continue
		}
		jp := profile{Mode: m, WallS: p.Wall.Seconds(), CriticalRecipe: p.CriticalTarget, Top: []jsonStep{}, Critical: []jsonStep{}}
		for _, s := range p.Steps[:min(10, len(p.Steps))] {
			jp.Top = append(jp.Top, stepJSON(s, 0))
		}
		for _, s := range p.Critical {
			jp.Critical = append(jp.Critical, stepJSON(s.RunStep, s.Waited))
		}
		for _, c := range p.Categories {
			jp.Categories = append(jp.Categories, category{Category: string(c.Category), Steps: c.Steps, RunningS: c.Running.Seconds(), BusyS: c.Busy.Seconds()})
		}
		doc.Profiles = append(doc.Profiles, jp)
	}
	if c := r.Check; c != nil {
		cd := &checkDoc{Modes: c.Modes, OK: c.OK, Recipes: []recipeCheck{}}
		for _, rc := range c.Recipes {
			cd.Recipes = append(cd.Recipes, recipeCheck{Name: rc.Name, Verdict: rc.Verdict, Why: rc.Why, Digests: rc.Digests})
		}
		doc.Check = cd
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// fmtDuration rounds for reading: 1m12.3s, 4.52s, 0.61s.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// fmtBytes writes a memory size in MiB.
func fmtBytes(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
