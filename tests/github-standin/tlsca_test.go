package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA makes a CA certificate for key, as a test's own CA would be made outside the stand-in.
func testCA(t *testing.T, key crypto.Signer, isCA bool) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "a test's CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writePEM(t *testing.T, path string, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, blk := range blocks {
		b = append(b, pem.EncodeToMemory(blk)...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, key crypto.Signer) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// The serving certificate made from a given CA (each key kind and encoding) or a fresh one
// verifies, in a real TLS handshake, against DIR/ca.pem's content alone.
func TestServingCertFromGivenCA(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := appKey(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		pem  []*pem.Block // the key file
	}{
		{"EC PKCS#8", ecKey, []*pem.Block{pkcs8(t, ecKey)}},
		// openssl ecparam -genkey writes the curve's parameters first.
		{"EC SEC1", ecKey, []*pem.Block{{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 34}},
			{Type: "EC PRIVATE KEY", Bytes: sec1}}},
		{"RSA PKCS#1", rsaKey, []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}}},
		{"RSA PKCS#8", rsaKey, []*pem.Block{pkcs8(t, rsaKey)}},
		{"fresh", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ca *CA
			var given *x509.Certificate
			var err error
			if tc.key == nil {
				ca, err = newCA()
			} else {
				given = testCA(t, tc.key, true)
				ca, err = loadCA(writePEM(t, filepath.Join(dir, "ca.crt"), &pem.Block{Type: "CERTIFICATE", Bytes: given.Raw}),
					writePEM(t, filepath.Join(dir, "ca.key"), tc.pem...))
			}
			if err != nil {
				t.Fatal(err)
			}
			caPEM := ca.PEM()
			if given != nil && !strings.Contains(string(caPEM), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: given.Raw}))) {
				t.Fatalf("ca.pem is not the given CA:\n%s", caPEM)
			}
			cert, err := ca.ServingCert([]string{"standin.test", "10.1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(caPEM) {
				t.Fatal("no certificate in ca.pem")
			}
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"standin.test", "10.1.2.3", "localhost", "127.0.0.1"} {
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			ts.StartTLS()
			defer ts.Close()
			cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			res, err := cl.Get(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		})
	}
}

// serve refuses a bad --ca-cert/--ca-key with the flag's name, before it makes DIR.
func TestServeRefusesBadCA(t *testing.T) {
	tmp := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certOf := func(name string, k crypto.Signer, isCA bool) string {
		return writePEM(t, filepath.Join(tmp, name), &pem.Block{Type: "CERTIFICATE", Bytes: testCA(t, k, isCA).Raw})
	}
	caCert := certOf("ca.crt", key, true)
	caKey := writePEM(t, filepath.Join(tmp, "ca.key"), pkcs8(t, key))
	otherKey := writePEM(t, filepath.Join(tmp, "other.key"), pkcs8(t, other))
	encrypted := writePEM(t, filepath.Join(tmp, "enc.key"), &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})
	notCA := certOf("leaf.crt", key, false)
	missing := filepath.Join(tmp, "missing.pem")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ca-cert", caCert}, "--ca-cert and --ca-key go together"},
		{[]string{"--ca-key", caKey}, "--ca-cert and --ca-key go together"},
		{[]string{"--ca-cert", missing, "--ca-key", caKey}, "--ca-cert: open " + missing},
		{[]string{"--ca-cert", caCert, "--ca-key", missing}, "--ca-key: open " + missing},
		{[]string{"--ca-cert", caKey, "--ca-key", caKey}, "--ca-cert " + caKey + ": no CERTIFICATE PEM block"},
		{[]string{"--ca-cert", caCert, "--ca-key", caCert}, "--ca-key " + caCert + ": no PRIVATE KEY"},
		{[]string{"--ca-cert", caCert, "--ca-key", encrypted}, "--ca-key " + encrypted + ": the key is encrypted"},
		{[]string{"--ca-cert", caCert, "--ca-key", otherKey}, "--ca-key " + otherKey + " is not the key of --ca-cert " + caCert},
		{[]string{"--ca-cert", notCA, "--ca-key", caKey}, "--ca-cert " + notCA + `: "a test's CA" is not a CA certificate`},
	} {
		dir := filepath.Join(tmp, "gs")
		err := serve(append([]string{"--dir", dir}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want %q", tc.args, err, tc.want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("serve %v made %s", tc.args, dir)
		}
	}
}
