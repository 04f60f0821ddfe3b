package fleet

import (
	"encoding/base64"
	"testing"

	"golang.org/x/crypto/argon2"
)

func argonKeyForTest(t *testing.T) string {
	t.Helper()
	return base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("s3cret"), []byte("saltsaltsalt"), 1, 65536, 2, 32))
}
