//go:build ignore

// hello prints one line. (The build tag keeps it out of minikit's own
// module; `go build hello.go` inside an image still builds it.)
package main

import "fmt"

func main() {
	fmt.Println("Hello, world!")
}
