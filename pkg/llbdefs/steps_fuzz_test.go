package llbdefs

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
)

// FuzzParsePort: a port either parses to NUMBER/PROTO, NUMBER 1 to 65535
// in canonical decimal and PROTO tcp, udp or sctp, that parses to itself
// and is what the input said, or is an error. Nothing panics. Seeds:
// testdata/fuzz/FuzzParsePort.
func FuzzParsePort(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			if p != "" {
				t.Fatalf("ParsePort(%q) = %q and error %v", s, p, err)
			}
			return
		}
		num, proto, ok := strings.Cut(p, "/")
		n, nerr := strconv.Atoi(num)
		if !ok || nerr != nil || n < 1 || n > 65535 || strconv.Itoa(n) != num || !slices.Contains([]string{"tcp", "udp", "sctp"}, proto) {
			t.Fatalf("ParsePort(%q) = %q, not NUMBER/PROTO", s, p)
		}
		if again, err := ParsePort(p); err != nil || again != p {
			t.Fatalf("ParsePort(%q) = %q, %v; want itself", p, again, err)
		}
		inNum, inProto, hasProto := strings.Cut(s, "/")
		if hasProto && inProto != proto || !hasProto && proto != "tcp" {
			t.Fatalf("ParsePort(%q) = %q: another protocol", s, p)
		}
		if m, err := strconv.ParseUint(inNum, 10, 64); err != nil || m != uint64(n) {
			t.Fatalf("ParsePort(%q) = %q: another number", s, p)
		}
	})
}

// FuzzDockerfileValues: a value a step carries into the Dockerfile (an
// ENV value, a LABEL key and value, an ARG default, a WORKDIR, a USER)
// comes out of BuildKit's Dockerfile frontend as it went in, or the
// rendering refuses it with ErrNoDockerfile, or the step does not
// validate. Nothing panics. Seeds: testdata/fuzz/FuzzDockerfileValues.
func FuzzDockerfileValues(f *testing.F) {
	f.Fuzz(func(t *testing.T, key, value string) {
		r := Recipe{Name: "fuzz", Final: From(Debian).
			Arg("A", value).
			Run("true").
			Env("E", value).
			Label(key, value).
			Workdir("/w/" + value).
			User(key), Cmd: Exec("/x")}
		text, err := r.RenderDockerfile()
		if err != nil {
			if !errors.Is(err, ErrNoDockerfile) && r.Validate() == nil {
				t.Fatalf("RenderDockerfile: %v, neither ErrNoDockerfile nor a step that does not validate", err)
			}
			return
		}
		plat := Platform()
		res, err := dockerfile2llb.Dockerfile2LLB(context.Background(), []byte(text), dockerfile2llb.ConvertOpt{
			Config:         dockerui.Config{},
			TargetPlatform: &plat,
			MetaResolver:   fakeImages{}, // dockerfile_test.go
		})
		if err != nil {
			t.Fatalf("the frontend refuses a rendered Dockerfile: %v\n%s", err, text)
		}
		got := res.Image.Config
		want := r.ImageConfig(fakeImages{}.config(Debian)).Config
		if !slices.Equal(got.Env, want.Env) || got.Labels[key] != value || got.User != want.User || got.WorkingDir != want.WorkingDir {
			t.Fatalf("frontend config env %q labels %q user %q workdir %q; want env %q label %q=%q user %q workdir %q\n%s",
				got.Env, got.Labels, got.User, got.WorkingDir, want.Env, key, value, want.User, want.WorkingDir, text)
		}
		def, err := res.State.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ex := execsOf(t, def) // steps_test.go
		if len(ex) != 1 || !slices.Contains(ex[0].Meta.Env, "A="+value) {
			t.Fatalf("frontend RUN env %v, want A=%q\n%s", ex, value, text)
		}
	})
}
