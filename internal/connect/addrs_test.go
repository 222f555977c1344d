package connect

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAddrs(t *testing.T) {
	t.Setenv("BUILDKIT_HOST", "tcp://a:1234, tcp://b:1234,,tcp://a:1234")
	if got, want := Addrs(nil), []string{"tcp://a:1234", "tcp://b:1234"}; !reflect.DeepEqual(got, want) {
		t.Errorf("from BUILDKIT_HOST: %v, want %v", got, want)
	}
	got := Addrs([]string{"unix:///x.sock", "tcp://c:1,tcp://d:1", "unix:///x.sock"})
	if want := []string{"unix:///x.sock", "tcp://c:1", "tcp://d:1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("from flags: %v, want %v (flags win over BUILDKIT_HOST)", got, want)
	}
	t.Setenv("BUILDKIT_HOST", "")
	if got := Addrs(nil); len(got) != 0 {
		t.Errorf("nothing given: %v, want none (the private daemon)", got)
	}
}

func TestOpenAllNoneAnswers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var log strings.Builder
	_, err := OpenAll(ctx, Options{Log: &log, Timeout: 2 * time.Second},
		[]string{"unix://" + dir + "/a.sock", "unix://" + dir + "/b.sock"})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("error %v, want ErrUnreachable", err)
	}
	for _, s := range []string{"a.sock", "b.sock"} {
		if !strings.Contains(err.Error(), s) || !strings.Contains(log.String(), s) {
			t.Errorf("%s not named in the error (%v) or the log (%q)", s, err, log.String())
		}
	}
}
