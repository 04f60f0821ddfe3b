package cases_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sanigate/sanigate/cases"
)

// A unit's webhook receiver checks each notification before trusting it.
func ExampleVerifySignature() {
	secret := []byte("shared-with-the-unit")
	body := []byte(`{"event":"dispatched","case":{"id":12}}`)
	sent := time.Unix(1795825200, 0)

	// What the gateway sends ...
	h := http.Header{}
	h.Set(cases.HeaderTimestamp, fmt.Sprint(sent.Unix()))
	h.Set(cases.HeaderSignature, cases.Sign(secret, sent.Unix(), body))

	// ... is accepted when fresh, and refused when replayed an hour later.
	fmt.Println(cases.VerifySignature(secret, h, body, sent.Add(3*time.Second), 5*time.Minute))
	fmt.Println(cases.VerifySignature(secret, h, body, sent.Add(time.Hour), 5*time.Minute))
	fmt.Println(cases.VerifySignature(secret, h, []byte(`{"event":"forged"}`), sent, 5*time.Minute))
	// Output:
	// <nil>
	// webhook timestamp outside the accepted window: signed 1h0m0s ago
	// webhook signature does not match
}

// A token is configured by its hash only.
func ExampleHashToken() {
	fmt.Println(cases.HashToken("correct-horse-battery-staple"))
	// Output: sha256:87cbebfeebc05f7c54ac9336c4b4bbec831227a641951a4bde7edd56020f8590
}
