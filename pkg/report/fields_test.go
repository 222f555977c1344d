package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/timings"
)

// documentedFields reads FIELDS.md: for each "## `Type`" section, the
// field names of its table.
func documentedFields(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open("FIELDS.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	heading := regexp.MustCompile("^## `([A-Za-z]+)`")
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	docs := map[string]map[string]bool{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := heading.FindStringSubmatch(line); m != nil {
			section = m[1]
			docs[section] = map[string]bool{}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			if section == "" {
				t.Fatalf("FIELDS.md: field %q outside a type section", m[1])
			}
			if docs[section][m[1]] {
				t.Errorf("FIELDS.md: %s.%s documented twice", section, m[1])
			}
			docs[section][m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}

// jsonFields is the JSON names of a struct type's fields.
func jsonFields(typ reflect.Type) map[string]bool {
	names := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		tag := typ.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		names[name] = true
	}
	return names
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Every field of every type of the document is documented, and nothing
// else is.
func TestFieldsDocumented(t *testing.T) {
	docs := documentedFields(t)
	types := map[string]reflect.Type{
		"Report":     reflect.TypeOf(Report{}),
		"Recipe":     reflect.TypeOf(Recipe{}),
		"RunOutcome": reflect.TypeOf(RunOutcome{}),
		"Image":      reflect.TypeOf(measure.Image{}),
		"Layer":      reflect.TypeOf(measure.Layer{}),
		"File":       reflect.TypeOf(measure.File{}),
		"Violation":  reflect.TypeOf(Violation{}),
		"Ranking":    reflect.TypeOf(Ranking{}),
		"RankEntry":  reflect.TypeOf(RankEntry{}),
		"Profile":    reflect.TypeOf(timings.Profile{}),
		"Step":       reflect.TypeOf(timings.Step{}),
	}
	for name, typ := range types {
		want := jsonFields(typ)
		got := docs[name]
		if got == nil {
			t.Errorf("FIELDS.md has no section for %s", name)
			continue
		}
		if !reflect.DeepEqual(sorted(got), sorted(want)) {
			t.Errorf("FIELDS.md, %s:\n documented %v\n  in the Go type %v", name, sorted(got), sorted(want))
		}
	}
	for name := range docs {
		if types[name] == nil {
			t.Errorf("FIELDS.md documents %s, which is not a type of the document", name)
		}
	}
}

// collectKeys adds every object key of a JSON value, at any depth.
func collectKeys(v any, keys map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			keys[k] = true
			collectKeys(c, keys)
		}
	case []any:
		for _, c := range v {
			collectKeys(c, keys)
		}
	}
}

// The JSON of a sample report holds exactly the documented names.
func TestJSONMatchesFields(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	collectKeys(doc, got)
	want := map[string]bool{}
	for section, names := range documentedFields(t) {
		if section == "Violation" {
			continue
		}
		for n := range names {
			want[n] = true
		}
	}
	if !reflect.DeepEqual(sorted(got), sorted(want)) {
		t.Errorf("keys of the sample JSON %v\n documented %v", sorted(got), sorted(want))
	}
}

func TestJSONRoundTrip(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep, back) {
		t.Errorf("round trip changed the report:\n%+v\n%+v", rep, back)
	}
	if _, err := ReadJSON(strings.NewReader("{not json")); err == nil {
		t.Error("no error for bad JSON")
	}
	if err := WriteJSON(&buf, nil); err == nil {
		t.Error("no error for a nil report")
	}
}
