package cases

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type openAPI struct {
	Paths      map[string]map[string]operation `yaml:"paths"`
	Components struct {
		Schemas   map[string]any      `yaml:"schemas"`
		Responses map[string]response `yaml:"responses"`
	} `yaml:"components"`
}

type operation struct {
	Responses map[string]response `yaml:"responses"`
}

type response struct {
	Ref     string `yaml:"$ref"`
	Content map[string]struct {
		Schema any `yaml:"schema"`
	} `yaml:"content"`
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

func (d *openAPI) response(r response) response {
	if r.Ref != "" {
		return d.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]
	}
	return r
}

// check validates v against schema: types, required properties, enums,
// recursively through $ref, properties and items.
func (d *openAPI) check(schema any, v any, at string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		return nil
	}
	if ref, ok := s["$ref"].(string); ok {
		return d.check(d.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")], v, at)
	}
	var errs []string
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T, want an object", at, v)}
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := m[r.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: required property %q missing", at, r))
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range m {
			if p, ok := props[k]; ok {
				errs = append(errs, d.check(p, val, at+"."+k)...)
			} else if ap, ok := s["additionalProperties"]; ok {
				errs = append(errs, d.check(ap, val, at+"."+k)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T, want an array", at, v)}
		}
		for i, x := range a {
			errs = append(errs, d.check(s["items"], x, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Sprintf("%s: got %T, want a string", at, v))
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			errs = append(errs, fmt.Sprintf("%s: got %v, want an integer", at, v))
		}
	case "number":
		if _, ok := v.(float64); !ok {
			errs = append(errs, fmt.Sprintf("%s: got %T, want a number", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: got %T, want a boolean", at, v))
		}
	}
	if enum, ok := s["enum"].([]any); ok && len(errs) == 0 {
		if !slices.Contains(enum, v) {
			errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
		}
	}
	return errs
}

// TestOpenAPIMatchesHandlers: every registered route is documented, every
// documented operation is registered and answers with a documented status
// whose JSON matches the documented schema, for a success and for errors.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	doc := loadOpenAPI(t)
	registered := map[string]bool{}
	for _, rt := range routes {
		registered[strings.ToLower(rt.method)+" "+rt.path] = true
		if _, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s is not documented in openapi.yaml", rt.method, rt.path)
		}
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, m+" "+p)
			if !registered[m+" "+p] {
				t.Errorf("openapi.yaml documents %s %s, which no handler serves", strings.ToUpper(m), p)
			}
		}
	}
	sort.Strings(documented)

	ctx := context.Background()
	e := newEnv(t, testConfig(StoreConfig{Driver: SQLite, Path: t.TempDir() + "/c.db"}, "http://127.0.0.1:1/x"), Deps{Devices: testDevices})
	if err := e.svc.Raise(ctx, dumpingAtFarm(e.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Raise(ctx, binOverflow("b", e.clock.Now(), false)); err != nil {
		t.Fatal(err)
	}
	page, _ := e.svc.List(ctx, System, Filter{})
	id := strconv.FormatInt(page.Cases[0].ID, 10)

	type probe struct {
		token, path, body string
	}
	for _, op := range documented {
		method, tmpl, _ := strings.Cut(op, " ")
		path := strings.NewReplacer("{id}", id, "{action}", "comment").Replace(tmpl)
		if strings.HasPrefix(tmpl, "/api/v1/devices/") {
			path = strings.Replace(tmpl, "{id}", "bin-0042", 1)
		}
		probes := []probe{
			{tokCity, path, `{"note":"checked"}`}, // success
			{"", path, ""},                        // 401
			{tokCity, strings.Replace(path, "/"+id, "/999999", 1), `{"note":"x"}`}, // 404 where there is an id
			{tokCity, path + "?limit=0&by=nope&period=week", `{"unknown":1}`},      // 400 where there are parameters
		}
		if tmpl == "/api/v1/cases/{id}/{action}" {
			probes = append(probes, probe{tokCity, strings.Replace(path, "comment", "handle", 1), ""}) // 409
			probes = append(probes, probe{tokEast, strings.Replace(path, "comment", "accept", 1), ""}) // 403 or 404
		}
		for _, p := range probes {
			t.Run(strings.ToUpper(method)+" "+p.path, func(t *testing.T) {
				var body io.Reader
				if method == "post" && p.body != "" {
					body = strings.NewReader(p.body)
				}
				req, _ := http.NewRequest(strings.ToUpper(method), e.api.URL+p.path, body)
				if p.token != "" {
					req.Header.Set("Authorization", "Bearer "+p.token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				r, ok := doc.Paths[tmpl][method].Responses[strconv.Itoa(resp.StatusCode)]
				if !ok {
					t.Fatalf("answered %d, which openapi.yaml does not document for %s %s: %s", resp.StatusCode, method, tmpl, raw)
				}
				r = doc.response(r)
				c, ok := r.Content["application/json"]
				if !ok {
					return
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("content type %q", ct)
				}
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("not JSON: %v: %s", err, raw)
				}
				for _, e := range doc.check(c.Schema, v, "body") {
					t.Error(e)
				}
			})
		}
	}
}
