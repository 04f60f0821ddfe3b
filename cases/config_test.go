package cases

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func parseSection(t *testing.T, src string) (Config, error) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	var section *yaml.Node
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "cases" {
			section = m.Content[i+1]
		}
	}
	return ParseConfig("sanigate.yaml", section)
}

func TestParseConfig(t *testing.T) {
	cfg, err := parseSection(t, `
cases:
  store: {driver: postgres, dsn_env: SANIGATE_CASES_DSN}
  units:
    - {id: enforcement-east, webhook_url: "https://east.example/hooks", secret_file: east.secret, escalation: city-office}
    - {id: city-office, mqtt_topic: sanigate/v1/devices/term-city/cmd}
  dispatch:
    default_unit: city-office
    rules: [{type: illegal_dumping, district: east, unit: enforcement-east}]
  deadlines:
    - {type: illegal_dumping, severity: critical, accept: 1h, close: 8h, working_time: true}
  tokens:
    - {name: desk, role: city, token_hash: "`+HashToken("t")+`"}
  outbox: {retry_max: 10m}
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Driver != Postgres || cfg.Deadlines[0].Close != 8*time.Hour || !cfg.Deadlines[0].WorkingTime ||
		cfg.Outbox.RetryMax != 10*time.Minute || cfg.Outbox.RetryMin != 2*time.Second {
		t.Fatalf("got %+v", cfg)
	}
}

func TestConfigProblemsAllAtOnce(t *testing.T) {
	_, err := parseSection(t, `
cases:
  store: {driver: mysql, registry_poll: 10ms}
  units:
    - {id: east, webhook_url: "ftp://x", escalaton: city}
    - {id: east, secret: abc}
  dispatch:
    rules: [{type: fly_tipping, unit: nobody}]
  deadlines:
    - {type: bin_overflow, severity: urgent, accept: 0s, close: 1h}
  tokens:
    - {name: desk, role: mayor, token_hash: "plain-token"}
    - {name: d2, role: district, token_hash: "`+HashToken("x")+`"}
`)
	if err == nil {
		t.Fatal("no problems reported")
	}
	want := []string{
		`sanigate.yaml:3: cases.store.driver: "mysql" is not a store driver`,
		`sanigate.yaml:3: cases.store.registry_poll: 10ms is too short (100ms at least)`,
		`sanigate.yaml:5: cases.units[0].escalaton: unknown setting "escalaton" (did you mean "escalation"?)`,
		`sanigate.yaml:5: cases.units[0].webhook_url: "ftp://x" is not an http(s) URL`,
		`sanigate.yaml:5: cases.units[0].secret_file: a webhook needs exactly one of`,
		`sanigate.yaml:6: cases.units[1].id: unit "east" is defined twice`,
		`sanigate.yaml:6: cases.units[1].webhook_url: a webhook secret is set but no webhook_url`,
		`cases.dispatch.default_unit: set a default unit`,
		`cases.dispatch.rules[0].type: "fly_tipping" is not a violation type`,
		`cases.dispatch.rules[0].unit: unknown unit "nobody"`,
		`sanigate.yaml:10: cases.deadlines[0].severity: "urgent" is not a severity`,
		`sanigate.yaml:10: cases.deadlines[0].accept: set a positive deadline`,
		`sanigate.yaml:12: cases.tokens[0].role: "mayor" is not a role`,
		`sanigate.yaml:12: cases.tokens[0].token_hash: not a token hash`,
		`sanigate.yaml:13: cases.tokens[1].district: a district token needs its district`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q in:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "abc") {
		t.Errorf("a secret leaked into the problems:\n%s", msg)
	}
}

func TestSecretIsNotPrinted(t *testing.T) {
	u := UnitConfig{ID: "east", Secret: "hunter2"}
	for _, s := range []string{u.Secret.String(), strings.TrimSpace(strings.Join([]string{sprintf("%v", u), sprintf("%+v", u), sprintf("%#v", u)}, " "))} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
