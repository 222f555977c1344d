// Package workflow holds the tests of the GitHub Actions workflows in
// .github/workflows: actionlint, with shellcheck on every run: script,
// must pass on them, and the minikit workflow must do what CI relies on
// (run `solve --test` on a buildkitd that allows network.host, free disk
// first, compare with the previous run's report and write the comparison
// to the job summary). The package has no code of its own.
//
// The tools: actionlint from the Go module proxy
// (`GOBIN=$PWD/bin go install github.com/rhysd/actionlint/cmd/actionlint@VERSION`,
// found on PATH or in the repository's bin/) and Debian's shellcheck
// (`apt-get install shellcheck`). Without them the lint test skips, except
// in CI (CI=true), where it fails.
package workflow
