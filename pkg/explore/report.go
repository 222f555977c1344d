package explore

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// newReport is the report of an explore run: one row per candidate, as
// `minikit solve` writes them (pkg/report), in plan order.
func newReport(res *Result, check runner.Check, standIns bool) *report.Report {
	rep := &report.Report{Generated: time.Now().UTC(), StandIns: standIns}
	images := map[string]string{}
	for _, v := range res.Variants {
		images[v.Name] = v.Image
	}
	for i, cd := range res.Candidates {
		row := report.RecipeRow(cd.Recipe, res.Results[i], standIns)
		row.Program = res.Program.Name
		if img := images[cd.Variant]; img != "" {
			row.BuildImage = llbdefs.ShortRef(img)
		}
		if check.Probe == nil {
			row.Expect = strconv.Itoa(check.ExpectExit)
		}
		rep.Recipes = append(rep.Recipes, row)
	}
	return rep
}

// rank is the ranking of the working candidates, smallest first,
// compared with the winner's own executable (its variant's).
func rank(res *Result) []report.Ranking {
	rk := report.Ranking{Program: res.Program.Name, FloorBytes: res.WinnerExeBytes, Smallest: res.Winner}
	var rows []report.Recipe
	for _, row := range res.Report.Recipes {
		if works(row) {
			rows = append(rows, row)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Image.Uncompressed < rows[j].Image.Uncompressed })
	for _, row := range rows {
		e := report.RankEntry{Recipe: row.Name, Uncompressed: row.Image.Uncompressed, FileBytes: row.Image.FileBytes, Verified: true}
		if rk.FloorBytes > 0 {
			e.Ratio = float64(e.Uncompressed) / float64(rk.FloorBytes)
			e.FileRatio = float64(e.FileBytes) / float64(rk.FloorBytes)
		}
		rk.Entries = append(rk.Entries, e)
	}
	if len(rk.Entries) == 0 {
		return nil
	}
	return []report.Ranking{rk}
}

// WriteText writes what `minikit explore` prints: the program and what it
// needs, the build variants, every candidate (the working ones first,
// smallest first, then the others with the reason) and the winner.
func WriteText(w io.Writer, res *Result) error {
	p := res.Program
	fmt.Fprintf(w, "%s: %s (%s)\n", p.Name, kindName(p.Kind), strings.Join(p.Files, ", "))
	fmt.Fprintf(w, "needs: %s\n", needsText(res.Facts))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nBUILD VARIANT\tIMAGE\tEXECUTABLE\tHOW")
	for _, v := range res.Variants {
		exe := "-"
		switch {
		case v.Err != nil:
			exe = "build failed"
		case v.ExeBytes > 0:
			exe = report.FormatBytes(v.ExeBytes)
		}
		img := "-"
		if v.Image != "" {
			img = llbdefs.ShortRef(v.Image)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, img, exe, v.Flags)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCANDIDATE\tWORKS\tUNCOMPRESSED\tCOMPRESSED\tADDED\tWHY NOT")
	for _, i := range candidateOrder(res.Report.Recipes) {
		row := res.Report.Recipes[i]
		ok, size, comp, added := "no", "-", "-", "-"
		if works(row) {
			ok = "yes"
		}
		if img := row.Image; img != nil {
			size, comp = report.FormatBytes(img.Uncompressed), report.FormatBytes(img.Compressed)
			if img.BaseKnown {
				added = "+" + report.FormatBytes(img.AddedUncompressed)
			}
		}
		var log []string
		if i < len(res.Results) {
			log = res.Results[i].FailedLog
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, ok, size, comp, added, whyNot(row, log))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	cd, found := res.WinnerCandidate()
	if !found {
		_, err := fmt.Fprintf(w, "\nno candidate works (%d tried)\n", len(res.Candidates))
		return err
	}
	var win report.Recipe
	for _, row := range res.Report.Recipes {
		if row.Name == res.Winner {
			win = row
		}
	}
	fmt.Fprintf(w, "\nsmallest working image: %s, %s B uncompressed (%s compressed)", cd.Name,
		groupDigits(win.Image.Uncompressed), report.FormatBytes(win.Image.Compressed))
	if res.WinnerExeBytes > 0 {
		fmt.Fprintf(w, ", %s its executable (%s B)", report.FormatRatio(float64(win.Image.Uncompressed)/float64(res.WinnerExeBytes)), groupDigits(res.WinnerExeBytes))
	}
	_, err := fmt.Fprintf(w, "\n  %s\n", cd.Recipe.Why)
	return err
}

// candidateOrder sorts rows: the working ones by size, then the others
// that built by size, then those that did not build, by name.
func candidateOrder(rows []report.Recipe) []int {
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	rankOf := func(r report.Recipe) int {
		switch {
		case works(r):
			return 0
		case r.Image != nil:
			return 1
		}
		return 2
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ra, rb := rows[idx[a]], rows[idx[b]]
		if x, y := rankOf(ra), rankOf(rb); x != y {
			return x < y
		}
		if ra.Image != nil && rb.Image != nil && ra.Image.Uncompressed != rb.Image.Uncompressed {
			return ra.Image.Uncompressed < rb.Image.Uncompressed
		}
		return ra.Name < rb.Name
	})
	return idx
}

// whyNot says why a candidate does not work, in one line: for a build
// that failed, the last line its failed step printed (log), else
// BuildKit's error.
func whyNot(row report.Recipe, log []string) string {
	switch {
	case works(row):
		return ""
	case row.Error != "":
		for i := len(log) - 1; i >= 0; i-- {
			if l := strings.TrimSpace(log[i]); l != "" {
				return "build failed: " + shorten(l, 120)
			}
		}
		return "build failed: " + shorten(row.Error, 120)
	case row.Run != nil:
		return shorten(row.Run.Reason, 120)
	}
	return "not run"
}

func shorten(s string, n int) string {
	s = firstLine(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func needsText(f Facts) string {
	var out []string
	if f.NeedsCA {
		out = append(out, "a CA bundle")
	}
	if f.NeedsTZ {
		out = append(out, "the time zone database")
	}
	if len(out) == 0 {
		return "nothing beyond its own files (no CA bundle, no time zone database)"
	}
	return strings.Join(out, " and ") + " (added to the bases that lack them)"
}

// groupDigits writes n with thousands separators: 1,612,800.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
