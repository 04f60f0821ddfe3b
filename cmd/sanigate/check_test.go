package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden want.txt files in testdata")

// TestCheckGolden runs `sanigate -check` on each testdata/<case>/sanigate.yaml
// and compares what it prints, and its exit code, with want.txt: every
// problem of every section in one run, each with its file and line.
func TestCheckGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"-config", filepath.Join(dir, "sanigate.yaml"), "-check"}, strings.NewReader(""), &out, &errb)
			got := "exit " + strconv.Itoa(code) + "\n" + out.String() + errb.String()
			want := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(b) {
				t.Errorf("got:\n%s\nwant:\n%s", got, b)
			}
		})
	}
}
