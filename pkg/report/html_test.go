package report

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// element is what the tests look at in a parsed page.
type element struct {
	tag   string
	attrs map[string]string
	text  string
}

func (e element) hasClass(c string) bool {
	for _, f := range strings.Fields(e.attrs["class"]) {
		if f == c {
			return true
		}
	}
	return false
}

// parseHTML returns every element of a page, in document order.
func parseHTML(t *testing.T, page []byte) []element {
	t.Helper()
	root, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var out []element
	var text func(*html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			b.WriteString(text(c))
		}
		return b.String()
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			e := element{tag: n.Data, attrs: map[string]string{}, text: text(n)}
			for _, a := range n.Attr {
				e.attrs[a.Key] = a.Val
			}
			out = append(out, e)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	return out
}

// checkPage checks a rendered page (or a browser's DOM of it) against the
// report: one .bar per built recipe, failing ones marked, nothing fetched.
func checkPage(t *testing.T, rep *Report, els []element) {
	t.Helper()
	bars := map[string]element{}
	marks := map[string]element{}
	for _, e := range els {
		if e.hasClass("bar") {
			name := e.attrs["data-recipe"]
			if _, dup := bars[name]; dup {
				t.Errorf("two bars for %q", name)
			}
			bars[name] = e
		}
		if e.hasClass("nobar") {
			marks[e.attrs["data-recipe"]] = e
		}
		for _, a := range []string{"src", "href", "action", "srcset", "poster"} {
			v := strings.ToLower(strings.TrimSpace(e.attrs[a]))
			if strings.HasPrefix(v, "http:") || strings.HasPrefix(v, "https:") || strings.HasPrefix(v, "//") {
				t.Errorf("<%s %s=%q> fetches from outside", e.tag, a, v)
			}
		}
		if e.tag == "link" || e.tag == "iframe" || e.tag == "img" || (e.tag == "script" && e.attrs["src"] != "") {
			t.Errorf("<%s> in a self-contained page: %v", e.tag, e.attrs)
		}
		if e.tag == "style" && strings.Contains(e.text, "@import") || strings.Contains(e.text, "url(") && e.tag == "style" {
			t.Errorf("the style sheet loads something: %q", e.text)
		}
	}
	built := 0
	for _, r := range rep.Recipes {
		bar, hasBar := bars[r.Name]
		if r.Built() {
			built++
			if !hasBar {
				t.Errorf("no bar for built recipe %s", r.Name)
				continue
			}
			if r.Failing() != bar.hasClass("failing") {
				t.Errorf("bar of %s: failing class %v, want %v (%q)", r.Name, bar.hasClass("failing"), r.Failing(), bar.attrs["class"])
			}
			continue
		}
		if hasBar {
			t.Errorf("a bar for %s, which did not build", r.Name)
		}
		m, ok := marks[r.Name]
		if !ok {
			t.Errorf("%s (%s) is not shown in the chart", r.Name, r.Status)
			continue
		}
		if r.Failing() != m.hasClass("failing") || !strings.Contains(m.text, r.Status) {
			t.Errorf("%s (%s) shown as %q, class %q", r.Name, r.Status, m.text, m.attrs["class"])
		}
	}
	if len(bars) != built {
		t.Errorf("%d bars for %d built recipes", len(bars), built)
	}
}

func TestHTML(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.Bytes()
	els := parseHTML(t, page)
	checkPage(t, rep, els)

	details := 0
	for _, e := range els {
		if e.tag == "details" {
			details++
		}
	}
	if details != len(rep.Recipes) {
		t.Errorf("%d <details> for %d recipes", details, len(rep.Recipes))
	}
	for _, want := range []string{
		"Stand-in figures", rep.Recipes[3].Image.Layers[0].CreatedBy, "/var/cache/debconf/templates.dat",
		"overwritten in layer 1", "removed in layer 1", "exit 127", "/bin/sh: javac: not found", "over budget",
		rep.Recipes[0].Image.ManifestDigest,
	} {
		if !bytes.Contains(page, []byte(html.EscapeString(want))) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Names are escaped, never interpreted.
	evil := &Report{Recipes: []Recipe{{Name: `x"><script>alert(1)</script>`, Program: "<b>", Status: "ok", Image: sampleImage("e", 0, 30_000)}}}
	buf.Reset()
	if err := WriteHTML(&buf, evil); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("<script>alert")) || bytes.Contains(buf.Bytes(), []byte("<h3><b>")) {
		t.Error("a recipe name was not escaped")
	}
	checkPage(t, evil, parseHTML(t, buf.Bytes()))
	if err := WriteHTML(&buf, nil); err == nil {
		t.Error("no error for a nil report")
	}
	// An empty report renders too.
	buf.Reset()
	if err := WriteHTML(&buf, &Report{}); err != nil {
		t.Fatal(err)
	}
}

func TestScale(t *testing.T) {
	for n, want := range map[int64]float64{0: 0, 20_000: 0, 1_000_000_000: 100, 5_000_000_000: 100} {
		if got := scalePos(n); got != want {
			t.Errorf("scalePos(%d) = %v, want %v", n, got, want)
		}
	}
	if p := scalePos(1_000_000); p < 35 || p > 37 { // log(50)/log(50000) = 36.2%
		t.Errorf("1 MB at %v%%", p)
	}
}
