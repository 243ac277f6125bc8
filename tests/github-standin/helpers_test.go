package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func appKey(t *testing.T) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT makes an RS256 JWT from raw header and claims JSON.
func signJWT(t *testing.T, key *rsa.PrivateKey, header, claims string) string {
	t.Helper()
	in := b64u([]byte(header)) + "." + b64u([]byte(claims))
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64u(sig)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	clock *fakeClock
}

const testPAT = "pat-secret-1"

func newHarness(t *testing.T) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Now()}
	s, err := NewServer(Config{
		Apps:          map[int64]*App{7: {ID: 7, Key: &appKey(t).PublicKey}},
		Installations: []InstallationSpec{{ID: 4242, Account: "acme"}},
		PATs:          []string{testPAT},
		Now:           clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	s.SetBaseURL(ts.URL)
	return &harness{t: t, srv: s, ts: ts, clock: clock}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (r resp) message(t *testing.T) string {
	m, _ := r.json(t)["message"].(string)
	return m
}

// do sends a request; auth is the whole Authorization value ("" for none).
func (h *harness) do(method, path, auth string, body any) resp {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "standin-test")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func (h *harness) jwt() string {
	now := h.clock.Now().Unix()
	return signJWT(h.t, appKey(h.t), `{"alg":"RS256","typ":"JWT"}`,
		`{"iat":`+itoa(now-60)+`,"exp":`+itoa(now+540)+`,"iss":7}`)
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

func (h *harness) instToken() string {
	h.t.Helper()
	r := h.do("POST", "/api/v3/app/installations/4242/access_tokens", "Bearer "+h.jwt(), nil)
	if r.status != 201 {
		h.t.Fatalf("access_tokens: %d %s", r.status, r.body)
	}
	return r.json(h.t)["token"].(string)
}

func (h *harness) regToken(scopePrefix, kind string) string {
	h.t.Helper()
	r := h.do("POST", "/api/v3"+scopePrefix+"/actions/runners/"+kind, "token "+testPAT, nil)
	if r.status != 201 {
		h.t.Fatalf("%s: %d %s", kind, r.status, r.body)
	}
	return r.json(h.t)["token"].(string)
}

func (h *harness) wantStatus(r resp, status int, msg string) {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if msg != "" {
		if got := r.message(h.t); got != msg {
			h.t.Fatalf("message %q, want %q", got, msg)
		}
	}
}

func newRawRequest(h *harness, method, path string) (*http.Request, error) {
	req, err := http.NewRequest(method, h.ts.URL+path, nil)
	if err == nil {
		req.Header.Set("User-Agent", "standin-test")
	}
	return req, err
}

func sendRaw(h *harness, req *http.Request) resp {
	h.t.Helper()
	res, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}
