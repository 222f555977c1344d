package llbdefs

import (
	"context"
	"strings"
	"testing"
)

func TestExtrasApartFromTheSeed(t *testing.T) {
	seed := map[string]bool{}
	for _, r := range Catalog() {
		seed[r.Name] = true
		if r.Extra {
			t.Errorf("seed row %s is marked extra", r.Name)
		}
	}
	extras := Extras()
	if len(extras) == 0 {
		t.Fatal("no extras")
	}
	seen := map[string]bool{}
	for i, r := range extras {
		if seed[r.Name] || seen[r.Name] {
			t.Errorf("%s: name taken", r.Name)
		}
		seen[r.Name] = true
		if i > 0 && extras[i-1].Name >= r.Name {
			t.Errorf("extras not sorted at %s", r.Name)
		}
		if !r.Extra || r.StandIn != Offline || r.Expect == "" || r.Why == "" {
			t.Errorf("%s: extra=%v stand-in=%s expect=%q why=%q", r.Name, r.Extra, r.StandIn, r.Expect, r.Why)
		}
		if parts := strings.Split(r.Name, "."); len(parts) != 3 {
			t.Errorf("%s: want PROGRAM.BUILD.RUN", r.Name)
		}
		for _, img := range r.Images() {
			if _, tag, ok := strings.Cut(img, ":"); !ok || tag == "" || tag == "latest" {
				t.Errorf("%s: image %s is not pinned", r.Name, img)
			}
		}
	}
	if all := All(); len(all) != len(Catalog())+len(extras) || all[0].Name != Catalog()[0].Name || !all[len(all)-1].Extra {
		t.Errorf("All: %d recipes", len(all))
	}
	if len(Catalog()) != 51 {
		t.Errorf("the seed catalog changed: %d rows", len(Catalog()))
	}
}

func TestExtrasMarshal(t *testing.T) {
	ctx := context.Background()
	for _, r := range Extras() {
		d1, err := r.Definition(ctx, DefaultSources())
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		d2, _ := r.Definition(ctx, DefaultSources())
		if defDigest(d1) != defDigest(d2) {
			t.Errorf("%s: two marshals differ", r.Name)
		}
	}
}

// Every floor is an extra onto scratch whose one file (plus the CA bundle
// for whatsmyip) is a stripped static executable.
func TestFloors(t *testing.T) {
	extras := Extras()
	for prog, name := range Floors() {
		r, ok := Lookup(extras, name)
		if !ok {
			t.Errorf("%s: floor %s is not an extra", prog, name)
			continue
		}
		if r.Program() != prog || r.RunImage() != "" || r.Expect != Works {
			t.Errorf("%s: floor %s: program %s, run image %q, expect %s", prog, name, r.Program(), r.RunImage(), r.Expect)
		}
		build := r.BuildImage()
		cmds := ""
		for _, s := range r.Stages() {
			for _, st := range s.steps {
				if st.kind == stepRun {
					cmds += st.args[0] + "\n"
				}
			}
		}
		for _, want := range map[string][]string{
			GCC:    {"-static", "-s"},
			Golang: {"-ldflags=\"-s -w\"", "-trimpath"},
			Rust:   {"+crt-static", "strip=symbols"},
		}[build] {
			if !strings.Contains(cmds, want) {
				t.Errorf("%s: floor build lacks %s:\n%s", name, want, cmds)
			}
		}
	}
	if _, ok := FloorRecipe("hello-py"); ok {
		t.Error("hello-py has no static executable")
	}
	if n, ok := FloorRecipe("hello-c"); !ok || n != "hello-c.musl-static.scratch" {
		t.Errorf("hello-c floor: %s", n)
	}
	// whatsmyip's floor carries only the CA bundle file, not /etc/ssl.
	r, _ := Lookup(extras, "whatsmyip.golang-static.scratch")
	if !r.Network || !strings.Contains(r.Final.key(), "/etc/ssl/certs/ca-certificates.crt") || strings.Contains(r.Final.key(), "\x00/etc/ssl\x00") {
		t.Errorf("whatsmyip floor copies %q", r.Final.key())
	}
}
