package report

import (
	"bytes"
	"html"
	"strings"
	"testing"
)

// A partial recipe's stand-in difference and an upstream-only recipe's own
// reason for being skipped reach the table and the HTML page whole.
func TestStandInReasonsAreShown(t *testing.T) {
	const (
		differs = "a glibc JRE 8 (Debian sid's OpenJDK 8) stands in for Temurin's musl JRE 8 on Alpine; what the row shows does not depend on the libc"
		skipped = "upstream only: rust:alpine's rustc targets x86_64-unknown-linux-musl; no Debian suite packages Rust's standard library for a musl target"
	)
	rep := &Report{StandIns: true, Recipes: []Recipe{
		{Name: "hello-java.openjdk-8.openjdk-8-jre-alpine", Program: "hello-java", Status: StatusOK, StandIn: true, StandInDiffers: differs},
		{Name: "hello-rust.rust-alpine", Program: "hello-rust", Status: StatusSkipped, Error: skipped},
	}}
	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"partial: " + differs, skipped} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"partial stand-in", html.EscapeString(differs), html.EscapeString(skipped)} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("HTML page lacks %q", want)
		}
	}
}
