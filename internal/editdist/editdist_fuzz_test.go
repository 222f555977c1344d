package editdist

import "testing"

// FuzzLevenshtein: the edit distance is a metric bounded by the lengths.
func FuzzLevenshtein(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b string) {
		d := Levenshtein(a, b)
		if d != Levenshtein(b, a) {
			t.Errorf("Levenshtein(%q, %q) = %d, the other way %d", a, b, d, Levenshtein(b, a))
		}
		if (d == 0) != (a == b) {
			t.Errorf("Levenshtein(%q, %q) = %d", a, b, d)
		}
		if d < abs(len(a)-len(b)) || d > max(len(a), len(b)) {
			t.Errorf("Levenshtein(%q, %q) = %d, outside [%d, %d]", a, b, d, abs(len(a)-len(b)), max(len(a), len(b)))
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
