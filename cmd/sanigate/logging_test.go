package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestEveryLogLineHasOneComponent(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			log, err := newLogger(&b, format, slog.LevelInfo, "gateway")
			if err != nil {
				t.Fatal(err)
			}
			log.Info("plain")
			log.With("component", "writer").Info("from the writer", "batch", 3)
			log.With("component", "cases").With("unit", "east").Warn("nested With")
			log.WithGroup("req").Info("grouped", "path", "/x")
			log.Info("inline", "component", "retention")
			log.Debug("below the level")
			want := []string{"gateway", "writer", "cases", "gateway", "retention"}
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if len(lines) != len(want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), b.String())
			}
			for i, l := range lines {
				if n := strings.Count(l, "component"); n != 1 {
					t.Errorf("line %d has %d component keys: %s", i, n, l)
				}
				if format == "json" {
					var m map[string]any
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Fatalf("line %d is not JSON: %v: %s", i, err, l)
					}
					if m["component"] != want[i] {
						t.Errorf("line %d: component %v, want %s", i, m["component"], want[i])
					}
				} else if !strings.Contains(l, "component="+want[i]) {
					t.Errorf("line %d lacks component=%s: %s", i, want[i], l)
				}
			}
		})
	}
}

func TestBadLogFormatIsRefused(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-log-format", "xml", "-check"}, strings.NewReader(""), &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "text or json") {
		t.Errorf("stderr: %s", errb.String())
	}
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"-version"}, {"version"}} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		for _, want := range []string{"sanigate ", "commit ", "built ", "linux/"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out.String())
			}
		}
	}
	version, commit, date = "v1.2.3", "0123abc", "2026-11-30T08:00:00Z"
	defer func() { version, commit, date = "", "", "" }()
	var out bytes.Buffer
	run([]string{"-version"}, strings.NewReader(""), &out, &out)
	if !strings.Contains(out.String(), "sanigate v1.2.3\ncommit 0123abc\nbuilt 2026-11-30T08:00:00Z") {
		t.Errorf("with link-time values: %s", out.String())
	}
}
