package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// TestJavaRows builds and runs the Java rows on the Java stand-ins: each
// offline row ends as the seed matrix says, the jlink runtime runs on
// ubuntu, and the class file compiled for Java 21 that the Java 8 runtime
// refuses is explained from the class file and the runtime.
func TestJavaRows(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	code, doc := testJSON(t, ctx, "hello-java.*")
	if code != 0 {
		t.Errorf("minikit test hello-java.* exited %d, want 0", code)
	}
	rows := map[string]testRow{}
	for _, r := range doc.Recipes {
		rows[r.Name] = r
	}
	want := map[string]struct {
		code   int
		kind   string
		reason string
	}{
		"hello-java.openjdk":                        {0, "ok", "ok"},
		"hello-java.amazoncorretto":                 {0, "ok", "ok"},
		"hello-java.openjdk-11.openjdk-11-jre":      {0, "ok", "ok"},
		"hello-java.openjdk-15-jlink.ubuntu":        {0, "ok", "ok"},
		"hello-java.openjdk.openjdk-jre":            {0, "ok", "ok"},
		"hello-java.openjdk-8.openjdk-8-jre-alpine": {0, "ok", "ok"},
		"hello-java.openjdk.openjdk-8-jre-alpine":   {1, "class-version", "class file version 65.0; this Java 8 runtime accepts up to 52.0"},
	}
	ran := 0
	for _, r := range llbdefs.Catalog() {
		if r.Program() != "hello-java" {
			continue
		}
		row, ok := rows[r.Name]
		w, offline := want[r.Name]
		switch {
		case !ok:
			t.Errorf("%s: no row", r.Name)
		case offline != r.BuildsOffline():
			t.Errorf("%s: catalog stand-in %q, but this test expects it built offline: %v", r.Name, r.StandIn, offline)
		case !offline:
			if row.Run != nil || !strings.Contains(row.Skipped, r.Offline) {
				t.Errorf("%s: upstream only, want skipped with %q, got %+v", r.Name, r.Offline, row)
			}
		case row.Run == nil:
			t.Errorf("%s: not run (%s): %s", r.Name, row.Status, row.Error)
		default:
			ran++
			o := row.Run
			if !o.Matches || o.ExitCode != w.code || o.Kind != w.kind || !strings.Contains(o.Reason, w.reason) {
				t.Errorf("%s: got %d %s %q (stderr %q), want %d %s containing %q", r.Name, o.ExitCode, o.Kind, o.Reason, o.StderrTail, w.code, w.kind, w.reason)
			}
			if want := map[bool]string{true: r.Offline}[r.StandIn == llbdefs.Partial]; row.StandInDiffers != want {
				t.Errorf("%s: stand_in_differs %q, want %q", r.Name, row.StandInDiffers, want)
			}
			if w.code == 0 && !strings.Contains(strings.Join(o.StdoutTail, "\n"), "Hello") {
				t.Errorf("%s: stdout %q, want the program's greeting", r.Name, o.StdoutTail)
			}
		}
	}
	if ran != len(want) {
		t.Errorf("%d Java rows run, want %d", ran, len(want))
	}
}
