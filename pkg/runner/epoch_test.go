package runner

import (
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

func TestSourceDateEpoch(t *testing.T) {
	c := &config{}
	entries := []client.ExportEntry{{Type: client.ExporterOCI, Attrs: map[string]string{"name": "x"}}, {Type: client.ExporterImage}}
	c.stampEpoch(entries)
	if len(entries[0].Attrs) != 1 || entries[1].Attrs != nil {
		t.Errorf("no epoch: attrs changed: %v", entries)
	}
	if err := SourceDateEpoch(time.Unix(1700000000, 500))(c); err != nil {
		t.Fatal(err)
	}
	c.stampEpoch(entries)
	for _, e := range entries {
		if e.Attrs["source-date-epoch"] != "1700000000" || e.Attrs["rewrite-timestamp"] != "true" {
			t.Errorf("%s: attrs %v", e.Type, e.Attrs)
		}
	}
	if entries[0].Attrs["name"] != "x" {
		t.Error("other attrs lost")
	}
	if err := SourceDateEpoch(time.Time{})(c); err == nil {
		t.Error("zero time accepted")
	}
}
