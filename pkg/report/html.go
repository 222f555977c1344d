package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// The chart's log scale.
const (
	ScaleMin = 20_000        // 20 kB, the left edge
	ScaleMax = 1_000_000_000 // 1 GB, the right edge
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes": FormatBytes,
	"short": shortDigest,
	"plus":  func(a, b int) int { return a + b },
	"ratio": FormatRatio,
}).Parse(htmlSource))

// WriteHTML writes the report as one self-contained HTML page (inline CSS
// and a few lines of inline JavaScript, nothing fetched): a bar chart of
// every image's uncompressed size, grouped by program, on a log scale from
// 20 kB to 1 GB, each bar split into the base image's bytes and the bytes
// the recipe adds, failing combinations hatched in red; below, one
// collapsible section per recipe with its layers, largest files and
// wasted bytes. Every bar is an element of class "bar" with a
// data-recipe="NAME" attribute.
func WriteHTML(w io.Writer, rep *Report) error {
	if err := checkReport(rep); err != nil {
		return err
	}
	if err := htmlTemplate.Execute(w, newPage(rep)); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return nil
}

// page is what the template renders.
type page struct {
	Generated string
	Machine   string
	StandIns  bool
	Total     int
	Built     int
	Failing   int
	Skipped   int
	Ticks     []tick
	Groups    []group
	Ranking   []Ranking // the smallest working image per program (rank.go)
}

type tick struct {
	Label string
	Style template.CSS
}

type group struct {
	Program string
	Rows    []row
}

// row is one recipe, in the chart and in the details.
type row struct {
	Recipe
	ID         string // the details element's id
	Label      string // the name without the program
	Title      string // the bar's tooltip
	Class      string // CSS classes of the bar or of the placeholder
	BarStyle   template.CSS
	BaseStyle  template.CSS
	Budget     template.CSS // the budget marker's position, "" for none
	Overflow   bool         // larger than ScaleMax
	StatusCSS  string
	Note       string // why there is no bar
	Unexpected bool
}

// scalePos is the position of n bytes on the chart, in percent.
func scalePos(n int64) float64 {
	if n <= ScaleMin {
		return 0
	}
	p := (math.Log10(float64(n)) - math.Log10(ScaleMin)) / (math.Log10(ScaleMax) - math.Log10(ScaleMin)) * 100
	return math.Min(p, 100)
}

func pct(v float64) string { return fmt.Sprintf("%.3f%%", v) }

func newPage(rep *Report) page {
	p := page{Machine: rep.Machine, StandIns: rep.StandIns, Total: len(rep.Recipes), Ranking: rep.Ranking}
	if !rep.Generated.IsZero() {
		p.Generated = rep.Generated.UTC().Format(time.RFC3339)
	}
	for _, t := range []struct {
		n     int64
		label string
	}{{20_000, "20 kB"}, {100_000, "100 kB"}, {1_000_000, "1 MB"}, {10_000_000, "10 MB"}, {100_000_000, "100 MB"}, {1_000_000_000, "1 GB"}} {
		p.Ticks = append(p.Ticks, tick{Label: t.label, Style: template.CSS("left:" + pct(scalePos(t.n)))})
	}

	// Groups in the order their programs first appear; in a group, by size.
	byProgram := map[string]int{}
	order := sortedBySize(rep.Recipes)
	sort.SliceStable(order, func(a, b int) bool {
		return firstIndex(rep.Recipes, rep.Recipes[order[a]].Program) < firstIndex(rep.Recipes, rep.Recipes[order[b]].Program)
	})
	for _, i := range order {
		r := rep.Recipes[i]
		g, ok := byProgram[r.Program]
		if !ok {
			g = len(p.Groups)
			byProgram[r.Program] = g
			name := r.Program
			if name == "" {
				name = "(no program)"
			}
			p.Groups = append(p.Groups, group{Program: name})
		}
		p.Groups[g].Rows = append(p.Groups[g].Rows, newRow(r))
		switch {
		case r.Built():
			p.Built++
		case r.Status == StatusSkipped:
			p.Skipped++
		}
		if r.Failing() {
			p.Failing++
		}
	}
	return p
}

func firstIndex(rs []Recipe, program string) int {
	for i, r := range rs {
		if r.Program == program {
			return i
		}
	}
	return len(rs)
}

func newRow(r Recipe) row {
	w := row{
		Recipe:     r,
		ID:         "r-" + r.Name + platformID(r.Platform),
		Label:      strings.TrimPrefix(r.Label(), r.Program+"."),
		StatusCSS:  "st-" + cssWord(r.Status),
		Unexpected: r.Unexpected(),
	}
	if w.Label == "" {
		w.Label = r.Label()
	}
	classes := []string{w.StatusCSS}
	if r.Failing() {
		classes = append(classes, "failing")
	}
	if r.OverBudget() {
		classes = append(classes, "over-budget")
	}
	img := r.Image
	if img == nil {
		w.Class = strings.Join(append([]string{"nobar"}, classes...), " ")
		w.Note = r.Status
		if msg := firstLine(r.Error, 120); msg != "" {
			w.Note += ": " + msg
		}
		w.Title = r.Name + " — " + r.Status
		return w
	}
	w.Class = strings.Join(append([]string{"bar"}, classes...), " ")
	total := scalePos(img.Uncompressed)
	width := math.Max(total, 0.6) // a sliver even below the scale
	w.BarStyle = template.CSS("width:" + pct(width))
	if img.BaseKnown && img.BaseUncompressed > 0 {
		base := 0.0
		if total > 0 {
			base = scalePos(img.BaseUncompressed) / total * 100
		}
		w.BaseStyle = template.CSS("width:" + pct(math.Min(base, 100)))
	}
	w.Overflow = img.Uncompressed > ScaleMax
	if r.Budget > 0 {
		w.Budget = template.CSS("left:" + pct(scalePos(r.Budget)))
	}
	title := fmt.Sprintf("%s — %s uncompressed, %s compressed", r.Name, FormatBytes(img.Uncompressed), FormatBytes(img.Compressed))
	if img.BaseKnown {
		title += fmt.Sprintf("; base %s + added %s", FormatBytes(img.BaseUncompressed), FormatBytes(img.AddedUncompressed))
	}
	w.Title = title + " — " + r.Outcome()
	return w
}

// cssWord keeps letters, digits and dashes.
func cssWord(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}

// shortDigest is "sha256:0123456789ab".
func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

// platformID is a platform's part of a row's HTML id: "-linux-arm64",
// "" for none.
func platformID(p string) string {
	if p == "" {
		return ""
	}
	return "-" + strings.ReplaceAll(p, "/", "-")
}
