package fleet

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrBadPassword is returned when a password does not match its hash.
var ErrBadPassword = errors.New("password does not match")

// HashPassword returns a bcrypt hash of password at the given cost
// (bcrypt.DefaultCost when cost is 0).
func HashPassword(password string, cost int) (string, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// CheckHashFormat tells whether hash is a bcrypt ($2a$, $2b$, $2y$), an
// argon2id ($argon2id$v=19$m=..,t=..,p=..$salt$key) or, for generated
// secrets, an $hmac-sha256$ hash.
func CheckHashFormat(hash string) error {
	switch {
	case strings.HasPrefix(hash, SecretPrefix):
		_, _, err := parseSecretHash(hash)
		return err
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("not a valid bcrypt hash: %v", err)
		}
		return nil
	case strings.HasPrefix(hash, "$argon2id$"):
		_, _, _, _, err := parseArgon2id(hash)
		return err
	default:
		return errors.New("not a bcrypt, argon2id or $hmac-sha256$ hash (a plain password is never accepted here)")
	}
}

// VerifyPassword checks password against a bcrypt, argon2id or $hmac-sha256$
// hash.
func VerifyPassword(hash, password string) error {
	if strings.HasPrefix(hash, SecretPrefix) {
		return verifySecret(hash, password)
	}
	if strings.HasPrefix(hash, "$argon2id$") {
		p, salt, key, version, err := parseArgon2id(hash)
		if err != nil {
			return err
		}
		_ = version
		got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key)))
		if subtle.ConstantTimeCompare(got, key) != 1 {
			return ErrBadPassword
		}
		return nil
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return ErrBadPassword
		}
		return err
	}
	return nil
}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

func parseArgon2id(hash string) (argonParams, []byte, []byte, int, error) {
	var p argonParams
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=65536,t=3,p=2", salt, key
	if len(parts) != 6 {
		return p, nil, nil, 0, errors.New("not a valid argon2id hash: want $argon2id$v=19$m=..,t=..,p=..$salt$key")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil {
		return p, nil, nil, 0, fmt.Errorf("not a valid argon2id hash: version: %v", err)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, nil, nil, 0, fmt.Errorf("not a valid argon2id hash: parameters: %v", err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, 0, fmt.Errorf("not a valid argon2id hash: salt: %v", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return p, nil, nil, 0, errors.New("not a valid argon2id hash: key")
	}
	return p, salt, key, version, nil
}
