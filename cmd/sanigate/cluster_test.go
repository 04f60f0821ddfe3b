package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The cluster section and the roles flag are checked before anything starts.
func TestClusterConfigAndRoles(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		args       []string
		code       int
		want       string
	}{
		{"alone, every role", "", nil, 0, "configuration is valid"},
		{"a subset alone", "", []string{"-roles", "edge,api"}, 1, "need cluster mode"},
		{"an unknown role", "", []string{"-roles", "edge,ingest"}, 1, `unknown role "ingest"`},
		{"cluster mode", "cluster:\n  nats: [nats://127.0.0.1:4222, nats://127.0.0.1:4223, nats://127.0.0.1:4224]\n  partitions: 32\n",
			[]string{"-roles", "edge"}, 0, "configuration is valid"},
		{"the flag sets cluster mode", "", []string{"-roles", "detect", "-nats", "nats://127.0.0.1:4222"}, 0, "configuration is valid"},
		{"bad cluster settings", "cluster:\n  nats: [http://x:1]\n  replicas: 7\n  partitions: -1\n", nil, 1,
			":2: cluster.nats[0]"},
		{"bad replicas line", "cluster:\n  nats: [nats://a:1]\n  replicas: 7\n", nil, 1, ":3: cluster.replicas"},
		{"misspelt setting", "cluster:\n  nats_urls: [nats://a:1]\n", nil, 1, `unknown setting "nats_urls"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sanigate.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run(append([]string{"-config", path, "-check"}, tc.args...), strings.NewReader(""), &out, &errb)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stdout %q stderr %q", code, tc.code, out.String(), errb.String())
			}
			if got := out.String() + errb.String(); !strings.Contains(got, tc.want) {
				t.Errorf("output %q lacks %q", got, tc.want)
			}
		})
	}
}

func TestHelpDocumentsClusterFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-help"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, f := range []string{"-roles", "-nats"} {
		if !strings.Contains(errb.String(), f) {
			t.Errorf("help lacks %s", f)
		}
	}
}
