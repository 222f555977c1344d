package report

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// A Ranking orders one program's working images by size and compares each
// with the program's floor: the size of its own stripped static executable,
// measured in the same run (the largest file of the floor recipe's image).
type Ranking struct {
	Program string `json:"program"`
	// FloorRecipe is the recipe whose image is the program's stripped
	// static executable alone ("" when the program has none, e.g. an
	// interpreted one); FloorBytes the executable's size, 0 when the floor
	// recipe was not built in this run.
	FloorRecipe string `json:"floor_recipe,omitempty"`
	FloorBytes  int64  `json:"floor_bytes,omitempty"`
	// Entries are the program's working images, smallest first.
	Entries []RankEntry `json:"entries"`
	// Smallest is the first entry's recipe, SmallestSeed the smallest
	// working image among the seed rows ("" when none works).
	Smallest     string `json:"smallest"`
	SmallestSeed string `json:"smallest_seed,omitempty"`
}

// A RankEntry is one working image of a Ranking.
type RankEntry struct {
	Recipe string `json:"recipe"`
	Extra  bool   `json:"extra,omitempty"`
	// Uncompressed is the image's size (sum of its layers' tar streams),
	// FileBytes the size of its files' contents.
	Uncompressed int64 `json:"uncompressed"`
	FileBytes    int64 `json:"file_bytes"`
	// Ratio is Uncompressed / the floor, FileRatio FileBytes / the floor;
	// both 0 when the floor is unknown. Ratio counts the tar headers and
	// padding of the layers, which weigh on a 15 kB image.
	Ratio     float64 `json:"ratio,omitempty"`
	FileRatio float64 `json:"file_ratio,omitempty"`
	// Verified is set when the image was run and exited 0; otherwise it
	// counts as working because it built and is expected to exit 0.
	Verified bool `json:"verified"`
}

// Working reports whether the recipe's image works: it was built and ran
// with exit code 0, or, not run, it was built and is expected to exit 0.
func (r Recipe) Working() bool {
	if !r.Built() || r.Failing() {
		return false
	}
	if r.Run != nil {
		return r.Run.Works()
	}
	return r.Expect == "0"
}

// Rank ranks every program's working images (see Ranking). floors maps a
// program to its floor recipe's name; a program not in it has no floor.
// Programs come in the order of their first recipe in recipes.
func Rank(recipes []Recipe, floors map[string]string) []Ranking {
	var order []string
	byProgram := map[string][]Recipe{}
	for _, r := range recipes {
		if _, seen := byProgram[r.Program]; !seen {
			order = append(order, r.Program)
			byProgram[r.Program] = nil
		}
		if r.Working() {
			byProgram[r.Program] = append(byProgram[r.Program], r)
		}
	}
	var out []Ranking
	for _, p := range order {
		rs := byProgram[p]
		if len(rs) == 0 {
			continue
		}
		rk := Ranking{Program: p, FloorRecipe: floors[p]}
		for _, r := range recipes {
			if r.Name == rk.FloorRecipe && r.Image != nil && len(r.Image.Largest) > 0 {
				rk.FloorBytes = r.Image.Largest[0].Size
			}
		}
		sort.SliceStable(rs, func(i, j int) bool {
			if rs[i].Image.Uncompressed != rs[j].Image.Uncompressed {
				return rs[i].Image.Uncompressed < rs[j].Image.Uncompressed
			}
			return rs[i].Name < rs[j].Name
		})
		for _, r := range rs {
			e := RankEntry{Recipe: r.Name, Extra: r.Extra, Uncompressed: r.Image.Uncompressed,
				FileBytes: r.Image.FileBytes, Verified: r.Run != nil}
			if rk.FloorBytes > 0 {
				e.Ratio = float64(e.Uncompressed) / float64(rk.FloorBytes)
				e.FileRatio = float64(e.FileBytes) / float64(rk.FloorBytes)
			}
			rk.Entries = append(rk.Entries, e)
			if !r.Extra && rk.SmallestSeed == "" {
				rk.SmallestSeed = r.Name
			}
		}
		rk.Smallest = rk.Entries[0].Recipe
		out = append(out, rk)
	}
	return out
}

// Entry returns the ranking's entry for recipe.
func (rk Ranking) Entry(recipe string) (RankEntry, bool) {
	for _, e := range rk.Entries {
		if e.Recipe == recipe {
			return e, true
		}
	}
	return RankEntry{}, false
}

// FormatRatio writes a ratio to the floor: "1.08x", "-" for none.
func FormatRatio(r float64) string {
	if r <= 0 {
		return "-"
	}
	if r >= 100 {
		return fmt.Sprintf("%.0fx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}

// WriteRanking writes the "smallest working image per program" section:
// per program its smallest working image, the seed's smallest beside it,
// and the floor. Nothing when the report has no ranking.
func WriteRanking(w io.Writer, rep *Report) error {
	if err := checkReport(rep); err != nil {
		return err
	}
	if len(rep.Ranking) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nSmallest working image per program (ratio: image size / the program's stripped static executable)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tFLOOR\tSMALLEST\tSIZE\tx FLOOR\tSEED SMALLEST\tSIZE\tx FLOOR")
	for _, rk := range rep.Ranking {
		floor := "-"
		if rk.FloorBytes > 0 {
			floor = FormatBytes(rk.FloorBytes)
		}
		best, _ := rk.Entry(rk.Smallest)
		seedName, seedSize, seedRatio := "-", "-", "-"
		if s, ok := rk.Entry(rk.SmallestSeed); ok {
			seedName, seedSize, seedRatio = s.Recipe, FormatBytes(s.Uncompressed), FormatRatio(s.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rk.Program, floor,
			best.Recipe, FormatBytes(best.Uncompressed), FormatRatio(best.Ratio), seedName, seedSize, seedRatio)
	}
	return tw.Flush()
}
