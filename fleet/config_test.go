package fleet

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each folder of testdata/config holds a sanigate.yaml and want.txt, the
// exact problem list Load reports (empty for a valid file).
func TestLoadGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/config/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			path := filepath.Join(dir, "sanigate.yaml")
			_, err := Load(path)
			got := ""
			if err != nil {
				got = err.Error() + "\n"
			}
			wantPath := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestManyMistakesAllReported(t *testing.T) {
	_, err := Load("testdata/config/many-mistakes/sanigate.yaml")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %T %v, want Problems", err, err)
	}
	// Every mistake, each with its line.
	want := map[string]int{
		"city.timezone":            2,
		"mqtt.adress":              4,
		"mqtt.max_packet_bytes":    5,
		"influxdb.url":             7,
		"influxdb.batch_size":      8,
		"devices[0].category":      12,
		"devices[1].id":            14,
		"devices[2].id":            18,
		"devices[2].kind":          19,
		"devices[2].interval":      20,
		"devices[2].password_hash": 21,
		"devices[3].lat":           26,
		"devices[4].class":         29,
		"devices[4].capacity_kg":   30,
		"devices[4].password_hash": 27,
	}
	got := map[string]int{}
	for _, p := range ps {
		got[p.Field] = p.Line
	}
	for field, line := range want {
		l, ok := got[field]
		if !ok {
			t.Errorf("no problem reported for %s", field)
			continue
		}
		if l != line {
			t.Errorf("%s: got line %d, want %d", field, l, line)
		}
	}
	if !strings.Contains(err.Error(), `did you mean "address"?`) {
		t.Errorf("no suggestion for the misspelt mqtt.adress:\n%v", err)
	}
}

func TestDefaultsAndEnvironment(t *testing.T) {
	env := map[string]string{"SANIGATE_INFLUXDB_URL": "http://10.0.0.5:8086", "SANIGATE_MQTT_ADDRESS": "127.0.0.1:11883"}
	cfg, err := Parse("x.yaml", []byte("devices: []\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InfluxDB.URL != "http://10.0.0.5:8086" || cfg.MQTT.Address != "127.0.0.1:11883" {
		t.Errorf("environment not applied: %+v %+v", cfg.InfluxDB, cfg.MQTT)
	}
	if cfg.HTTP.Address != ":8080" || cfg.MQTT.MaxPacketBytes != 64<<10 || cfg.City.Timezone != "Asia/Shanghai" {
		t.Errorf("defaults: got %+v %+v %+v", cfg.HTTP, cfg.MQTT, cfg.City)
	}
	if cfg.Intervals["truck"].D() != 10*time.Second {
		t.Errorf("truck interval default: got %v", cfg.Intervals["truck"].D())
	}
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("s3cret", 4)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry([]Device{{ID: "bin-1", Kind: "bin", PasswordHash: h}})
	for i := 0; i < 2; i++ { // the second round goes through the remembered digest
		if !r.Authenticate("bin-1", "s3cret") {
			t.Fatal("right password refused")
		}
		if r.Authenticate("bin-1", "s3cret ") || r.Authenticate("bin-1", "") || r.Authenticate("bin-2", "s3cret") {
			t.Fatal("wrong credentials accepted")
		}
	}
	// argon2id, m=64MiB t=1 p=2, salt "saltsaltsalt", password "s3cret".
	a := "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHRzYWx0$" + argonKeyForTest(t)
	if err := VerifyPassword(a, "s3cret"); err != nil {
		t.Errorf("argon2id: %v", err)
	}
	if err := VerifyPassword(a, "nope"); !errors.Is(err, ErrBadPassword) {
		t.Errorf("argon2id wrong password: got %v", err)
	}
}

func TestInfluxCompression(t *testing.T) {
	for _, c := range []struct {
		url, compression string
		want             bool
	}{
		{"http://127.0.0.1:8086", "", false},
		{"http://localhost:8086", "auto", false},
		{"http://[::1]:8086", "", false},
		{"https://influx.city.example:8086", "", true},
		{"http://10.0.0.5:8086", "auto", true},
		{"http://127.0.0.1:8086", "gzip", true},
		{"https://influx.city.example:8086", "none", false},
	} {
		ic := InfluxConfig{URL: c.url, Compression: c.compression}
		if got := ic.Gzip(); got != c.want {
			t.Errorf("%s with compression %q: gzip %v, want %v", c.url, c.compression, got, c.want)
		}
	}
	cfg := "influxdb: {url: http://127.0.0.1:8086, bucket: b, compression: zstd}\n"
	_, err := Parse("sanigate.yaml", []byte(cfg), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "influxdb.compression") {
		t.Fatalf("compression: zstd: got %v, want an influxdb.compression problem", err)
	}
}
