package explore

import (
	"slices"
	"strings"
	"testing"
)

// FuzzSplitArgs: any input splits or errs, never panics, and the words
// it gives, each quoted in single quotes, split back to themselves.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"", "a b", `'a b' "c\"d"`, `x\ y`, `"$HOME"`, "\t'\\''"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitArgs(s)
		if err != nil {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := SplitArgs(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q: words %q, quoted and split again %q (%v)", s, words, again, err)
		}
	})
}

// FuzzParseProbe: any input parses or errs, never panics; what parses
// has a port in range and a path starting with /.
func FuzzParseProbe(f *testing.F) {
	for _, s := range []string{"http://:8080/", "http://localhost:1/x?y", "https://:1/", "http://[::1]:80/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProbe(s)
		if err != nil {
			return
		}
		if p.Port < 1 || p.Port > 65535 || !strings.HasPrefix(p.Path, "/") {
			t.Fatalf("%q: %+v", s, p)
		}
	})
}
