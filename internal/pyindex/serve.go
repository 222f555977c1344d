package pyindex

import (
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Prefix is the URL path under which Handler serves the index.
const Prefix = "/simple/"

// Handler serves the index directory dir, read only, as the simple
// repository API (PEP 503): /simple/ lists the projects,
// /simple/<project>/ links to its wheel with the wheel's SHA-256 (which
// pip checks) and Requires-Python, and /simple/<project>/<wheel> is the
// wheel. It answers only GET and HEAD. pip asks for PEP 691's JSON form
// first and accepts HTML, which is what it gets.
func Handler(dir string) http.Handler {
	return &handler{dir: dir}
}

type handler struct{ dir string }

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the package index is read only", http.StatusMethodNotAllowed)
		return
	}
	if req.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, req, Prefix, http.StatusMovedPermanently)
		return
	}
	rest, ok := strings.CutPrefix(req.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, req)
		return
	}
	m, err := readManifest(h.dir)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case rest == "":
		h.page(w, "Simple index", projectLinks(m))
		return
	case len(parts) > 2:
		http.NotFound(w, req)
		return
	}
	name := normalize(parts[0])
	p := m.Projects[name]
	if p == nil {
		http.Error(w, fmt.Sprintf("project %q is not in minikit's package index", parts[0]), http.StatusNotFound)
		return
	}
	switch {
	case len(parts) == 1 || (parts[1] == "" && name != parts[0]):
		http.Redirect(w, req, Prefix+name+"/", http.StatusMovedPermanently)
	case parts[1] == "":
		link := fmt.Sprintf(`<a href="%s#sha256=%s"`, html.EscapeString(p.File), p.SHA256)
		if p.RequiresPython != "" {
			link += fmt.Sprintf(` data-requires-python="%s"`, html.EscapeString(p.RequiresPython))
		}
		h.page(w, "Links for "+name, []string{link + ">" + html.EscapeString(p.File) + "</a>"})
	case parts[1] == p.File:
		f, err := os.Open(filepath.Join(h.dir, wheelDir, p.File))
		if err != nil {
			http.Error(w, "wheel missing from the index", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Etag", `"sha256:`+p.SHA256+`"`)
		http.ServeContent(w, req, "", time.Time{}, f)
	default:
		http.NotFound(w, req)
	}
}

func projectLinks(m *manifest) []string {
	names := make([]string, 0, len(m.Projects))
	for n := range m.Projects {
		names = append(names, n)
	}
	sort.Strings(names)
	links := make([]string, len(names))
	for i, n := range names {
		links[i] = fmt.Sprintf(`<a href="%s/">%s</a>`, n, n)
	}
	return links
}

// page writes a simple-API HTML page (PEP 503; repository version 1.0).
func (h *handler) page(w http.ResponseWriter, title string, links []string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>%s</title>\n</head>\n<body>\n", html.EscapeString(title))
	for _, l := range links {
		fmt.Fprintf(w, "%s<br>\n", l)
	}
	fmt.Fprint(w, "</body>\n</html>\n")
}
