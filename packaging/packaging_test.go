package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The unit passes systemd's own checks, where systemd-analyze exists (it is
// not something a build machine must have).
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd); the unit is not verified")
	}
	// verify checks that ExecStart names an executable: point it at one.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.Replace(read(t, "sanigate.service"), "ExecStart=/usr/local/bin/sanigate ", "ExecStart="+exe+" ", 1)
	path := filepath.Join(t.TempDir(), "sanigate.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	// Lines about the host's own units are not ours.
	var ours []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, "sanigate.service") {
			ours = append(ours, l)
		}
	}
	if err != nil || len(ours) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestSystemdUnitIsHardened(t *testing.T) {
	unit := read(t, "sanigate.service")
	for _, want := range []string{
		"User=sanigate", "StateDirectory=sanigate", "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes",
		"PrivateTmp=yes", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter=@system-service", "DevicePolicy=closed", "-spool-dir /var/lib/sanigate/spool",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	if !strings.Contains(read(t, "sanigate.sysusers"), "u sanigate ") {
		t.Error("the sysusers file does not create the sanigate user")
	}
}

func TestContainerfileIsStaticAndNonRoot(t *testing.T) {
	cf := read(t, "Containerfile")
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(cf, -1)
	if len(froms) < 2 || froms[len(froms)-1][1] != "scratch" {
		t.Errorf("want a multi-stage build ending on scratch, got %v", froms)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-tags timetzdata", "USER 10001:10001", "ca-certificates.crt"} {
		if !strings.Contains(cf, want) {
			t.Errorf("the Containerfile lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?m)^USER\s+(0|root)\b`).MatchString(cf) {
		t.Error("the image runs as root")
	}
}

func TestComposeExample(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Image    string   `yaml:"image"`
			ReadOnly bool     `yaml:"read_only"`
			CapDrop  []string `yaml:"cap_drop"`
			Build    *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(read(t, "compose.yaml")), &c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sanigate", "influxdb", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	for name, s := range c.Services {
		if s.Build == nil && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
	}
	g := c.Services["sanigate"]
	if g.Build == nil || g.Build.Dockerfile != "packaging/Containerfile" || !g.ReadOnly || len(g.CapDrop) == 0 {
		t.Errorf("sanigate service: %+v, want built from packaging/Containerfile, read-only, capabilities dropped", g)
	}
	if _, err := os.Stat(filepath.Join(g.Build.Context, g.Build.Dockerfile)); err != nil {
		t.Errorf("build context: %v", err)
	}
}
