// Package influxtest starts a real InfluxDB 1.8 (influxd, installed by
// `make tools` into .tools/bin) for tests, on a free loopback port with a
// temporary data folder, and queries it with InfluxQL.
package influxtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
)

// Server is a running influxd.
type Server struct {
	URL      string
	Database string
	bin      string
	dir      string
	conf     string
	logFile  string

	mu   sync.Mutex
	proc *testenv.Proc
}

// Start runs influxd for the test and creates database db; it is stopped at cleanup.
func Start(t testing.TB, db string) *Server {
	t.Helper()
	bin, ok := testenv.Tool("SANIGATE_INFLUXD", "influxd")
	if !ok {
		testenv.Missing(t, "influxd (InfluxDB 1.8.10)", "run `make tools`, or set SANIGATE_INFLUXD")
	}
	dir := t.TempDir()
	port := testenv.FreePort(t)
	rpc := testenv.FreePort(t)
	conf := filepath.Join(dir, "influxdb.conf")
	cfg := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
  wal-fsync-delay = "0s"
[http]
  bind-address = "127.0.0.1:%d"
  log-enabled = false
  flux-enabled = false
  max-body-size = 0
[logging]
  level = "error"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
`, rpc, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Database: db, bin: bin, dir: dir, conf: conf,
		logFile: filepath.Join(dir, "influxd.log")}
	t.Cleanup(s.Stop)
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query("CREATE DATABASE " + db); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return s
}

// Restart starts influxd again after Stop, on the same port and data.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	p, err := testenv.StartProc(s.logFile, s.bin, "-config", s.conf)
	if err != nil {
		return fmt.Errorf("influxtest: %w", err)
	}
	if err := p.WaitHTTP(s.URL+"/ping", http.StatusNoContent, 60*time.Second); err != nil {
		p.Kill()
		return fmt.Errorf("influxtest: influxd: %w", err)
	}
	s.proc = p
	return nil
}

// Stop stops influxd (as an outage would); Restart brings it back.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.Stop(15 * time.Second)
	s.proc = nil
}

// Result is one series of a query answer.
type Result struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Rows returns the values as maps from column to value.
func (r Result) Rows() []map[string]any {
	out := make([]map[string]any, 0, len(r.Values))
	for _, v := range r.Values {
		m := make(map[string]any, len(r.Columns))
		for i, c := range r.Columns {
			if i < len(v) {
				m[c] = v[i]
			}
		}
		for k, val := range r.Tags {
			m[k] = val
		}
		out = append(out, m)
	}
	return out
}

// Query runs InfluxQL against the database, times in nanoseconds since the epoch.
func (s *Server) Query(q string) ([]Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	form := url.Values{"q": {q}, "db": {s.Database}, "epoch": {"ns"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Results []struct {
			Series []Result `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: %s: %w", q, resp.Status, err)
	}
	if body.Error != "" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	var out []Result
	for _, r := range body.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("query %q: %s", q, r.Error)
		}
		out = append(out, r.Series...)
	}
	return out, nil
}

// Rows runs q and returns all rows of all series.
func (s *Server) Rows(t testing.TB, q string) []map[string]any {
	t.Helper()
	res, err := s.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, r := range res {
		rows = append(rows, r.Rows()...)
	}
	return rows
}

// Count returns SELECT count(field) for a measurement, or 0.
func (s *Server) Count(t testing.TB, measurement, field, where string) int64 {
	t.Helper()
	q := fmt.Sprintf(`SELECT count(%q) FROM %q`, field, measurement)
	if where != "" {
		q += " WHERE " + where
	}
	rows := s.Rows(t, q)
	if len(rows) == 0 {
		return 0
	}
	n, _ := rows[0]["count"].(json.Number).Int64()
	return n
}
