//go:build ignore

// hello prints one line. (The build tag, a C comment, keeps this file out
// of minikit's own Go package.)

#include <stdio.h>

int main(void) {
	puts("Hello, world!");
	return 0;
}
