package runner

import (
	"bytes"
	"encoding/csv"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
)

// FuzzParseOutput: an --output value that parses is a valid export (a
// known kind, a destination where one is needed and none where not, a
// load only for docker without a destination, push only on image,
// lower-case attribute keys that are not fields, no NUL or control
// character in any text) whose String form, buildx's CSV, parses back
// to the same export. A value that does not parse gives the zero
// export. Seeds: testdata/fuzz/FuzzParseOutput.
func FuzzParseOutput(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseOutput(s)
		if err != nil {
			if !e.Equal(Export{}) {
				t.Errorf("ParseOutput(%q) = %+v with error %v", s, e, err)
			}
			return
		}
		if err := e.validate(); err != nil {
			t.Fatalf("ParseOutput(%q) = %+v, invalid: %v", s, e, err)
		}
		if !slices.Contains(exportKinds, e.Kind) {
			t.Errorf("ParseOutput(%q): kind %q", s, e.Kind)
		}
		if e.Load != (e.Kind == ExportDocker && e.Dest == "") || (e.Kind == ExportImage) != (e.Dest == "" && !e.Load) {
			t.Errorf("ParseOutput(%q) = %+v: load and destination do not fit the kind", s, e)
		}
		if e.Push && e.Kind != ExportImage {
			t.Errorf("ParseOutput(%q) = %+v: a push that is not an image's", s, e)
		}
		texts := []string{e.Dest, e.Name}
		for k, v := range e.Attrs {
			if k == "" || k != strings.ToLower(strings.TrimSpace(k)) || slices.Contains(reservedAttrs, k) {
				t.Errorf("ParseOutput(%q): attribute key %q", s, k)
			}
			texts = append(texts, k, v)
		}
		for _, x := range texts {
			if strings.IndexFunc(x, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || !utf8.ValidString(x) {
				t.Errorf("ParseOutput(%q): %q holds a control character or invalid UTF-8", s, x)
			}
		}
		if back, err := ParseOutput(e.String()); err != nil || !back.Equal(e) {
			t.Errorf("ParseOutput(%q) = %+v; its String %q parses as %+v, %v", s, e, e.String(), back, err)
		}
	})
}

// FuzzParseCache: a --cache-to/--cache-from value that parses has a known
// type, lower-case keys and what its type needs (mode on exports only, a
// registry ref that stays a valid reference once named after a recipe), the
// whole value was read (one CSV line), and written back as CSV it parses
// to the same entry. Seeds: testdata/fuzz/FuzzParseCache.
func FuzzParseCache(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, export bool) {
		e, err := ParseCache(s, export)
		if err != nil {
			return
		}
		if !slices.Contains(cacheTypes, e.Type) {
			t.Fatalf("ParseCache(%q, %v): type %q", s, export, e.Type)
		}
		for k := range e.Attrs {
			if k == "" || k != strings.ToLower(strings.TrimSpace(k)) || k == "type" {
				t.Errorf("ParseCache(%q, %v): key %q", s, export, k)
			}
		}
		if _, ok := e.Attrs["mode"]; ok && !export {
			t.Errorf("ParseCache(%q, false): an import with a mode", s)
		}
		if e.Type == "registry" {
			ref := recipeRef(e.Attrs["ref"], "hello-c.gcc")
			if _, err := reference.ParseNormalizedNamed(ref); err != nil {
				t.Errorf("ParseCache(%q, %v): ref %q gives %q, not an image reference: %v", s, export, e.Attrs["ref"], ref, err)
			}
		}
		r := csv.NewReader(strings.NewReader(s))
		r.TrimLeadingSpace = true
		if _, err := r.Read(); err == nil {
			if _, err := r.Read(); err != io.EOF {
				t.Errorf("ParseCache(%q, %v) = %+v, reading only the first of several lines", s, export, e)
			}
		}
		again := formatCache(t, e)
		back, err := ParseCache(again, export)
		if err != nil || back.Type != e.Type || !maps.Equal(back.Attrs, e.Attrs) {
			t.Errorf("ParseCache(%q, %v) = %+v; written back as %q: %+v, %v", s, export, e, again, back, err)
		}
	})
}

// formatCache writes an entry as the CSV ParseCache reads.
func formatCache(t *testing.T, e client.CacheOptionsEntry) string {
	fields := []string{"type=" + e.Type}
	for _, k := range slices.Sorted(maps.Keys(e.Attrs)) {
		fields = append(fields, k+"="+e.Attrs[k])
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(fields); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

// FuzzParsePlatforms: a --platform list that parses is at least one
// platform, each with an OS and an architecture, none given twice, and
// its formatted form parses back to the same platforms; one that does
// not parse gives none. Seeds: f.Add below and
// testdata/fuzz/FuzzParsePlatforms.
func FuzzParsePlatforms(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/amd64,linux/arm64", " linux/arm/v7 , linux/arm64/v8", "linux/aarch64", "linux/x86_64,linux/amd64",
		"windows(10.0.17763)/amd64", "linux/amd64,,linux/arm64", "arm64", "linux/", "/amd64", "linux/amd64/v2/x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParsePlatforms(s)
		if err != nil {
			if ps != nil {
				t.Errorf("ParsePlatforms(%q) = %v with error %v", s, ps, err)
			}
			return
		}
		if len(ps) == 0 {
			t.Fatalf("ParsePlatforms(%q): no platform, no error", s)
		}
		if err := checkPlatforms(ps); err != nil {
			t.Errorf("ParsePlatforms(%q) = %v: %v", s, ps, err)
		}
		keys := make([]string, len(ps))
		for i, p := range ps {
			keys[i] = platformKey(p)
		}
		again, err := ParsePlatforms(strings.Join(keys, ","))
		if err != nil {
			t.Fatalf("ParsePlatforms(%q) = %v, whose form %q does not parse: %v", s, keys, strings.Join(keys, ","), err)
		}
		for i, p := range again {
			if platformKey(p) != keys[i] {
				t.Errorf("ParsePlatforms(%q): %s parses back as %s", s, keys[i], platformKey(p))
			}
		}
	})
}
