package fleet

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SecretPrefix marks a hash of a machine-generated device secret:
// $hmac-sha256$<salt>$<mac>, salt and mac in unpadded base64, the mac being
// HMAC-SHA256 keyed by the salt over the secret. A 128-bit random secret
// cannot be guessed, so one keyed hash is as strong as bcrypt for it, at a
// thousandth of the cost (as MQTT brokers store device tokens). Passwords a
// person chooses keep bcrypt or argon2id.
const SecretPrefix = "$hmac-sha256$"

// SecretBytes is the length of a generated secret before encoding (128 bits).
const SecretBytes = 16

// GenerateSecret returns a new 128-bit random device secret (unpadded
// base64url, 22 characters) and its $hmac-sha256$ hash.
func GenerateSecret() (secret, hash string, err error) {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate secret: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	hash, err = HashSecret(secret)
	return secret, hash, err
}

// HashSecret returns the $hmac-sha256$ hash of a machine-generated secret
// with a fresh 16-byte salt. It refuses secrets shorter than 22 characters:
// this scheme is for generated secrets only.
func HashSecret(secret string) (string, error) {
	if len(secret) < 22 {
		return "", errors.New("secret too short for $hmac-sha256$ (want a generated 128-bit secret; use bcrypt for chosen passwords)")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash secret: %w", err)
	}
	return encodeSecretHash(salt, secretMAC(salt, secret)), nil
}

func encodeSecretHash(salt, mac []byte) string {
	return SecretPrefix + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(mac)
}

func secretMAC(salt []byte, secret string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

func parseSecretHash(hash string) (salt, mac []byte, err error) {
	rest, ok := strings.CutPrefix(hash, SecretPrefix)
	if !ok {
		return nil, nil, errors.New("not a $hmac-sha256$ hash")
	}
	s, m, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, nil, errors.New("not a valid $hmac-sha256$ hash: want $hmac-sha256$salt$mac")
	}
	salt, err = base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(salt) < 8 {
		return nil, nil, errors.New("not a valid $hmac-sha256$ hash: salt")
	}
	mac, err = base64.RawStdEncoding.DecodeString(m)
	if err != nil || len(mac) != sha256.Size {
		return nil, nil, errors.New("not a valid $hmac-sha256$ hash: mac")
	}
	return salt, mac, nil
}

func verifySecret(hash, secret string) error {
	salt, mac, err := parseSecretHash(hash)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(secretMAC(salt, secret), mac) != 1 {
		return ErrBadPassword
	}
	return nil
}
