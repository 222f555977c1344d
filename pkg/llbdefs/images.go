package llbdefs

// Base images, pinned in one place. The original experiments used unpinned
// tags (golang, alpine, openjdk, ...); these are the reproducible
// equivalents. Where an original tag no longer exists upstream, the row's
// Note says which image stands in for it.
//
// Offline, a registry of stand-ins assembled from Debian packages serves
// the docker.io names below, and the gcr.io ones of extras.go, as
// buildkitd's mirror (see internal/standin); results built on them are
// marked as stand-in results.
const (
	Alpine       = "docker.io/library/alpine:3.22"
	Busybox      = "docker.io/library/busybox:1.37"
	BusyboxGlibc = "docker.io/library/busybox:1.37-glibc"
	Debian       = "docker.io/library/debian:bookworm"
	Ubuntu       = "docker.io/library/ubuntu:24.04"

	GCC          = "docker.io/library/gcc:12-bookworm"
	Golang       = "docker.io/library/golang:1.26-bookworm"
	GolangAlpine = "docker.io/library/golang:1.26-alpine3.22"
	Golang127    = "docker.io/library/golang:1.27-bookworm" // the newest Go, for extras only
	Rust         = "docker.io/library/rust:1.91-bookworm"
	RustAlpine   = "docker.io/library/rust:1.91-alpine3.22"

	Python       = "docker.io/library/python:3.11-bookworm"
	PythonSlim   = "docker.io/library/python:3.11-slim-bookworm"
	PythonAlpine = "docker.io/library/python:3.11-alpine3.22"

	// Java: the openjdk repository is deprecated and its 8, 11, 15 and
	// alpine tags are gone; Eclipse Temurin builds of the same OpenJDK
	// versions stand in for them (15 was never an LTS: 17 replaces it).
	Corretto      = "docker.io/library/amazoncorretto:21"
	JDK           = "docker.io/library/eclipse-temurin:21-jdk"
	JRE           = "docker.io/library/eclipse-temurin:21-jre"
	JDKAlpine     = "docker.io/library/eclipse-temurin:21-jdk-alpine"
	JDK8          = "docker.io/library/eclipse-temurin:8-jdk"
	JRE8Alpine    = "docker.io/library/eclipse-temurin:8-jre-alpine"
	JDK11         = "docker.io/library/eclipse-temurin:11-jdk"
	JRE11         = "docker.io/library/eclipse-temurin:11-jre"
	JDK17         = "docker.io/library/eclipse-temurin:17-jdk"
	JDK17Alpine   = "docker.io/library/eclipse-temurin:17-jdk-alpine"
	GraalVMNative = "ghcr.io/graalvm/native-image-community:25-muslib" // JDK 25, maintained (:17 gets no builds); -muslib: the musl toolchain --static --libc=musl needs
)
