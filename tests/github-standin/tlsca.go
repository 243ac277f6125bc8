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
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// CA signs the serving certificate: a fresh one at each start, or one given with --ca-cert and
// --ca-key, for clients whose trust is fixed before the stand-in starts (a container image, a
// Helm value).
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// newCA creates a fresh CA (ECDSA P-256) valid for a year.
func newCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "github-standin test CA", Organization: []string{"miglet tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// loadCA reads a CA certificate and its private key (PEM; the key PKCS#8, PKCS#1 or SEC1, RSA
// or EC). Errors name the flag the file came from.
func loadCA(certFile, keyFile string) (*CA, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	cert, err := parseCACert(b)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert %s: %w", certFile, err)
	}
	b, err = os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-key: %w", err)
	}
	key, err := parsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("--ca-key %s: %w", keyFile, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("--ca-key %s is not the key of --ca-cert %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// parseCACert reads the first CERTIFICATE block and checks that clients will take it as the
// issuer of the serving certificate (OpenSSL refuses a CA without keyCertSign).
func parseCACert(pemBytes []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, pemBytes = pem.Decode(pemBytes)
		if blk == nil {
			return nil, errors.New("no CERTIFICATE PEM block found")
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		switch now := time.Now(); {
		case !c.BasicConstraintsValid || !c.IsCA:
			return nil, fmt.Errorf("%q is not a CA certificate (no basic constraints CA:TRUE)", c.Subject.CommonName)
		case c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0:
			return nil, fmt.Errorf("%q may not sign certificates (key usage without keyCertSign)", c.Subject.CommonName)
		case now.Before(c.NotBefore) || now.After(c.NotAfter):
			return nil, fmt.Errorf("%q is not valid now (%s to %s)", c.Subject.CommonName,
				c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
		}
		return c, nil
	}
}

// parsePrivateKey reads the first private key block: PKCS#8 "PRIVATE KEY", PKCS#1 "RSA PRIVATE
// KEY" or SEC1 "EC PRIVATE KEY" (other blocks, such as openssl's "EC PARAMETERS", are skipped).
func parsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, pemBytes = pem.Decode(pemBytes)
		if blk == nil {
			return nil, errors.New("no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY PEM block found")
		}
		if blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] != "" {
			return nil, errors.New("the key is encrypted; give it unencrypted")
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("a %T cannot sign", k)
			}
			return s, nil
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(blk.Bytes)
		}
	}
}

// PEM is the CA certificate, for DIR/ca.pem.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// ServingCert makes a key and a certificate for 127.0.0.1, ::1, localhost and hosts, signed by
// the CA; the chain sent to clients carries the CA certificate too.
func (ca *CA) ServingCert(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "github-standin"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:     []string{"localhost"},
	}
	// A given CA may expire sooner; the leaf is of no use after it anyway.
	if leaf.NotAfter.After(ca.Cert.NotAfter) {
		leaf.NotAfter = ca.Cert.NotAfter
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key}, nil
}
