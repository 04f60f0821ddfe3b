package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time by `make release`:
//
//	-ldflags "-X main.version=v1.2.0 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// A plain `go build` or `go install` leaves them empty, and buildInfo reads
// what the Go toolchain recorded instead (module version, VCS revision and
// time).
var (
	version string
	commit  string
	date    string
)

// buildInfo returns the version, commit and build date of this binary.
func buildInfo() (v, c, d string) {
	v, c, d = version, commit, date
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return orUnknown(v), orUnknown(c), orUnknown(d)
	}
	if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if c == "" {
				c = s.Value
			}
		case "vcs.time":
			if d == "" {
				d = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if v == "" {
		v = "devel"
	}
	if modified && c != "" && commit == "" {
		c += "-dirty"
	}
	return v, orUnknown(c), orUnknown(d)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func printVersion(w io.Writer) {
	v, c, d := buildInfo()
	fmt.Fprintf(w, "sanigate %s\ncommit %s\nbuilt %s\n%s %s/%s\n", v, c, d, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
