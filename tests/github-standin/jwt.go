package main

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// GitHub's messages for a rejected app JWT (401).
const (
	msgJWTUndecodable = "A JSON web token could not be decoded"
	msgJWTExpTooFar   = "'Expiration time' claim ('exp') is too far in the future"
	msgJWTExpPast     = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	msgJWTBadIat      = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	msgJWTNoApp       = "Integration not found"
)

// JWT limits: GitHub allows exp at most 10 minutes ahead and iat at most 60 s ahead (its
// docs suggest iat = now - 60 s to allow for clock drift).
const (
	jwtMaxExpAhead = 10 * 60
	jwtExpSlack    = 5
	jwtMaxIatAhead = 60
	jwtMaxLifetime = 11 * 60
)

type jwtError struct{ msg string }

func (e *jwtError) Error() string { return e.msg }

func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// jsonNumber turns a claim into seconds; ok is false unless it is a JSON number.
func jsonNumber(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// VerifyAppJWT checks a GitHub App JWT the way GitHub does and returns the app's id.
func VerifyAppJWT(tok string, apps map[int64]*App, now time.Time) (int64, error) {
	undecodable := &jwtError{msgJWTUndecodable}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return 0, undecodable
	}
	hb, err := b64url(parts[0])
	if err != nil {
		return 0, undecodable
	}
	var hdr map[string]any
	if json.Unmarshal(hb, &hdr) != nil {
		return 0, undecodable
	}
	if alg, _ := hdr["alg"].(string); alg != "RS256" {
		return 0, undecodable
	}
	pb, err := b64url(parts[1])
	if err != nil {
		return 0, undecodable
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.UseNumber()
	if dec.Decode(&claims) != nil || claims == nil {
		return 0, undecodable
	}
	sig, err := b64url(parts[2])
	if err != nil {
		return 0, undecodable
	}

	var appID int64 = -1
	switch iss := claims["iss"].(type) {
	case json.Number:
		if v, err := strconv.ParseInt(iss.String(), 10, 64); err == nil {
			appID = v
		}
	case string:
		if v, err := strconv.ParseInt(iss, 10, 64); err == nil {
			appID = v
		}
	}
	app, ok := apps[appID]
	if !ok {
		return 0, &jwtError{msgJWTNoApp}
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(app.Key, crypto.SHA256, digest[:], sig) != nil {
		return 0, undecodable
	}

	t := float64(now.Unix())
	iat, ok := jsonNumber(claims["iat"])
	if !ok || iat > t+jwtMaxIatAhead {
		return 0, &jwtError{msgJWTBadIat}
	}
	exp, ok := jsonNumber(claims["exp"])
	if !ok || exp <= t {
		return 0, &jwtError{msgJWTExpPast}
	}
	if exp > t+jwtMaxExpAhead+jwtExpSlack || exp-iat > jwtMaxLifetime {
		return 0, &jwtError{msgJWTExpTooFar}
	}
	return appID, nil
}

// ParseRSAPublicKey reads a PEM "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS#1). A private
// key PEM is accepted too (its public half is used), which is handy for tests.
func ParseRSAPublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	for {
		var blk *pem.Block
		blk, pemBytes = pem.Decode(pemBytes)
		if blk == nil {
			return nil, errors.New("no RSA public key PEM block found")
		}
		switch blk.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			rk, ok := k.(*rsa.PublicKey)
			if !ok {
				return nil, fmt.Errorf("the public key is %T, not RSA", k)
			}
			return rk, nil
		case "RSA PUBLIC KEY":
			return x509.ParsePKCS1PublicKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			return &k.PublicKey, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("the private key is %T, not RSA", k)
			}
			return &rk.PublicKey, nil
		}
	}
}
