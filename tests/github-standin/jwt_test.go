package main

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestVerifyAppJWT(t *testing.T) {
	key := appKey(t)
	other, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	apps := map[int64]*App{7: {ID: 7, Key: &key.PublicKey}}
	now := time.Unix(1_800_000_000, 0)
	n := now.Unix()
	hdr := `{"alg":"RS256","typ":"JWT"}`
	claims := func(iat, exp any, iss any) string {
		return fmt.Sprintf(`{"iat":%v,"exp":%v,"iss":%v}`, iat, exp, iss)
	}
	good := signJWT(t, key, hdr, claims(n-60, n+540, 7))
	for _, tc := range []struct {
		name, tok, want string // want "" = accepted
	}{
		{"typical", good, ""},
		{"iss as string", signJWT(t, key, hdr, claims(n-60, n+540, `"7"`)), ""},
		{"exp exactly 10 min", signJWT(t, key, hdr, claims(n, n+600, 7)), ""},
		{"iat 60s ahead", signJWT(t, key, hdr, claims(n+60, n+600, 7)), ""},
		{"no typ", signJWT(t, key, `{"alg":"RS256"}`, claims(n-60, n+540, 7)), ""},
		{"garbage", "not-a-jwt", msgJWTUndecodable},
		{"two parts", "a.b", msgJWTUndecodable},
		{"bad base64", "@@@.@@@.@@@", msgJWTUndecodable},
		{"header not JSON", b64u([]byte("x")) + "." + strings.Split(good, ".")[1] + "." + strings.Split(good, ".")[2], msgJWTUndecodable},
		{"alg none", b64u([]byte(`{"alg":"none"}`)) + "." + b64u([]byte(claims(n-60, n+540, 7))) + ".", msgJWTUndecodable},
		{"alg HS256", signJWT(t, key, `{"alg":"HS256"}`, claims(n-60, n+540, 7)), msgJWTUndecodable},
		{"other key", signJWT(t, other, hdr, claims(n-60, n+540, 7)), msgJWTUndecodable},
		{"tampered claims", strings.Split(good, ".")[0] + "." + b64u([]byte(claims(n-60, n+540, 7)+" ")) + "." + strings.Split(good, ".")[2], msgJWTUndecodable},
		{"unknown iss", signJWT(t, key, hdr, claims(n-60, n+540, 8)), msgJWTNoApp},
		{"no iss", signJWT(t, key, hdr, fmt.Sprintf(`{"iat":%d,"exp":%d}`, n-60, n+540)), msgJWTNoApp},
		{"exp 11 min ahead", signJWT(t, key, hdr, claims(n, n+660, 7)), msgJWTExpTooFar},
		{"lifetime over 11 min", signJWT(t, key, hdr, claims(n-120, n+600, 7)), msgJWTExpTooFar},
		{"expired", signJWT(t, key, hdr, claims(n-700, n-10, 7)), msgJWTExpPast},
		{"exp now", signJWT(t, key, hdr, claims(n-60, n, 7)), msgJWTExpPast},
		{"exp string", signJWT(t, key, hdr, claims(n-60, `"x"`, 7)), msgJWTExpPast},
		{"no exp", signJWT(t, key, hdr, fmt.Sprintf(`{"iat":%d,"iss":7}`, n-60)), msgJWTExpPast},
		{"iat string", signJWT(t, key, hdr, claims(`"1"`, n+540, 7)), msgJWTBadIat},
		{"no iat", signJWT(t, key, hdr, fmt.Sprintf(`{"exp":%d,"iss":7}`, n+540)), msgJWTBadIat},
		{"iat 2 min ahead", signJWT(t, key, hdr, claims(n+120, n+540, 7)), msgJWTBadIat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := VerifyAppJWT(tc.tok, apps, now)
			if tc.want == "" {
				if err != nil || id != 7 {
					t.Fatalf("rejected: %v (id %d)", err, id)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// Over HTTP: the 401 carries GitHub's message and "status"; an accepted JWT is counted.
func TestJWTOverHTTP(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/api/v3/orgs/acme/installation", "Bearer "+h.jwt(), nil)
	h.wantStatus(r, 200, "")
	m := r.json(t)
	if m["id"].(float64) != 4242 || m["app_id"].(float64) != 7 || m["account"].(map[string]any)["login"] != "acme" {
		t.Fatalf("installation: %s", r.body)
	}
	h.wantStatus(h.do("GET", "/api/v3/orgs/other/installation", "Bearer "+h.jwt(), nil), 404, "Not Found")
	h.wantStatus(h.do("GET", "/api/v3/repos/acme/app/installation", "Bearer "+h.jwt(), nil), 200, "")
	r = h.do("GET", "/api/v3/orgs/acme/installation", "Bearer nope", nil)
	h.wantStatus(r, 401, msgJWTUndecodable)
	if r.json(t)["status"] != "401" {
		t.Fatalf("401 without status: %s", r.body)
	}
	h.wantStatus(h.do("GET", "/api/v3/orgs/acme/installation", "", nil), 401, "Requires authentication")
	// A PAT is not a JWT.
	h.wantStatus(h.do("POST", "/api/v3/app/installations/4242/access_tokens", "token "+testPAT, nil), 401, msgJWTUndecodable)
	h.wantStatus(h.do("POST", "/api/v3/app/installations/999/access_tokens", "Bearer "+h.jwt(), nil), 404, "Not Found")
	// A JWT is no good on a runner endpoint.
	h.wantStatus(h.do("GET", "/api/v3/orgs/acme/actions/runners", "Bearer "+h.jwt(), nil), 401, "Bad credentials")
	if st := h.srv.State(); st.JWTAccepted != 4 {
		t.Fatalf("jwt_accepted = %d, want 4", st.JWTAccepted)
	}
}
