package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sanigate/sanigate/console"
)

// influxHistory reads a device's stored readings back from InfluxDB with
// InfluxQL, for the console's case page.
type influxHistory struct {
	url, db, rp, token string
	client             *http.Client
}

func newInfluxHistory(base, bucket, token string) *influxHistory {
	db, rp, _ := strings.Cut(bucket, "/")
	return &influxHistory{url: strings.TrimRight(base, "/"), db: db, rp: rp, token: token,
		client: &http.Client{Timeout: 5 * time.Second}}
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

func quoteString(s string) string {
	return `'` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + `'`
}

// maxHistoryPoints bounds one read.
const maxHistoryPoints = 5000

// Readings implements console.History.
func (h *influxHistory) Readings(ctx context.Context, kind, device string, from, to time.Time) ([]console.Point, error) {
	q := fmt.Sprintf(`SELECT * FROM %s WHERE "device" = %s AND time >= %d AND time <= %d ORDER BY time LIMIT %d`,
		quoteIdent(kind), quoteString(device), from.UnixNano(), to.UnixNano(), maxHistoryPoints)
	v := url.Values{"db": {h.db}, "q": {q}, "epoch": {"ms"}}
	if h.rp != "" {
		v.Set("rp", h.rp)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/query?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Token "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("influxdb query: %s: %.200s", resp.Status, body)
	}
	var out struct {
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Columns []string `json:"columns"`
				Values  [][]any  `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	var pts []console.Point
	for _, r := range out.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("influxdb query: %s", r.Error)
		}
		for _, s := range r.Series {
			for _, row := range s.Values {
				if p, ok := pointOf(s.Columns, row); ok {
					pts = append(pts, p)
				}
			}
		}
	}
	return pts, nil
}

// pointOf reads one row: the time in ms and the numeric columns.
func pointOf(cols []string, row []any) (console.Point, bool) {
	p := console.Point{Fields: map[string]float64{}}
	ok := false
	for i, c := range cols {
		if i >= len(row) {
			break
		}
		f, isNum := row[i].(float64)
		if !isNum {
			continue
		}
		if c == "time" {
			p.Time, ok = time.UnixMilli(int64(f)).UTC(), true
			continue
		}
		p.Fields[c] = f
	}
	return p, ok
}
