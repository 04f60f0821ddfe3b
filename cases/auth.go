package cases

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// Actor is who acts on a case: an API token's holder, or the system.
type Actor struct {
	// Name is recorded in the history of everything the actor does.
	Name     string `json:"name"`
	Role     string `json:"role"`
	District string `json:"district,omitempty"`
	Unit     string `json:"unit,omitempty"`
	// Admin may administer the gateway (configuration, device registry).
	Admin bool `json:"-"`
}

// System is the actor of automatic steps: filing, dispatch, deadlines.
var System = Actor{Name: "system", Role: RoleCity}

// dataVerifier is the actor of a verification by data.
var dataVerifier = Actor{Name: "data", Role: RoleCity}

// scope returns the SQL condition limiting cases to those the actor sees.
func (a Actor) scope() (string, []any) {
	switch a.Role {
	case RoleCity:
		return "", nil
	case RoleDistrict:
		return "district = ?", []any{a.District}
	case RoleUnit:
		return "unit = ?", []any{a.Unit}
	}
	return "1 = 0", nil
}

// sees reports whether the actor may see c.
func (a Actor) sees(c *Case) bool {
	switch a.Role {
	case RoleCity:
		return true
	case RoleDistrict:
		return c.District == a.District
	case RoleUnit:
		return c.Unit == a.Unit
	}
	return false
}

// HashToken returns the form in which a token is written in configuration
// (token_hash): "sha256:" and the hex SHA-256 of the token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tokens maps hashes to their holders.
type tokens map[string]Actor

func newTokens(cfg []TokenConfig) tokens {
	t := tokens{}
	for _, c := range cfg {
		h, ok := parseTokenHash(c.TokenHash)
		if !ok {
			continue
		}
		t[h] = Actor{Name: c.Name, Role: c.Role, District: c.District, Unit: c.Unit, Admin: c.Admin}
	}
	return t
}

// authenticate finds the holder of the request's bearer token. Looking up
// the token's hash rather than comparing tokens leaks nothing by timing.
func (t tokens) authenticate(r *http.Request) (Actor, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return Actor{}, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	a, ok := t[hex.EncodeToString(sum[:])]
	return a, ok
}
