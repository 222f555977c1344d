package runner

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	works := Target{Name: "a", Check: &Check{}}
	cannotStart := Target{Name: "b", Check: &Check{ExpectExit: 127}}
	buildFails := Target{Name: "c", ExpectBuildFailure: true}
	boom := errors.New("boom")
	cases := []struct {
		r        Target
		err      error
		canceled bool
		want     Status
	}{
		{works, nil, false, StatusOK},
		{cannotStart, nil, false, StatusOK}, // a run failure is not a build failure
		{works, boom, false, StatusFailed},
		{buildFails, boom, false, StatusExpectedFailure},
		{buildFails, nil, false, StatusUnexpectedSuccess},
		{works, boom, true, StatusCanceled},
		{buildFails, boom, true, StatusCanceled},
		{works, nil, true, StatusOK}, // finished before the interrupt
	}
	for _, c := range cases {
		if got := classify(c.r, c.err, c.canceled); got != c.want {
			t.Errorf("classify(%s, %v, canceled=%v) = %s; want %s", c.r.Name, c.err, c.canceled, got, c.want)
		}
	}
}

func TestUnexpected(t *testing.T) {
	rs := []Result{
		{Name: "ok", Status: StatusOK},
		{Name: "xf", Status: StatusExpectedFailure},
		{Name: "f", Status: StatusFailed},
		{Name: "us", Status: StatusUnexpectedSuccess},
		{Name: "c", Status: StatusCanceled},
	}
	var names []string
	for _, r := range Unexpected(rs) {
		names = append(names, r.Name)
	}
	if want := []string{"f", "us", "c"}; !slices.Equal(names, want) {
		t.Fatalf("Unexpected = %v; want %v", names, want)
	}
	if len(Unexpected(rs[:2])) != 0 {
		t.Fatal("ok and expected-failure are not unexpected")
	}
}

func TestResultJSON(t *testing.T) {
	dt, err := json.Marshal(Result{Name: "n", Status: StatusOK})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"name":"n"`, `"status":"ok"`, `"duration_ns":0`, `"vertices":0`, `"cached_vertices":0`} {
		if !strings.Contains(string(dt), key) {
			t.Errorf("%s lacks %s", dt, key)
		}
	}
}
