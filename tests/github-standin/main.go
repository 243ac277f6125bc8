// github-standin is a local HTTPS server that behaves like GitHub (as a GitHub Enterprise
// Server host, REST API under /api/v3) for the endpoints miglet uses to manage self-hosted
// runners, plus the runner's side of registration and a minimal job dispatcher, for tests.
// See README.md.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const usage = `usage:
  github-standin serve --dir DIR [--listen 127.0.0.1:0] [--host NAME_OR_IP]...
                       [--app ID=PUBKEY_PEM_FILE]... [--installation ID=ACCOUNT[@APPID]]...
                       [--pat TOKEN]... [--installation-token-ttl 1h]
                       [--registration-token-ttl 1h] [--session-idle 30s] [--log FILE]
                       [--ca-cert FILE --ca-key FILE]
  github-standin show --dir DIR
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "show":
		err = show(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		err = fmt.Errorf("unknown command %q\n%s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "github-standin:", err)
		os.Exit(2)
	}
}

type Info struct {
	URL    string `json:"url"`
	APIURL string `json:"api_url"`
	CAFile string `json:"ca_file"`
	PID    int    `json:"pid"`
}

// parseInstallation reads ID=ACCOUNT[@APPID]; ACCOUNT may be user:LOGIN for a user account.
func parseInstallation(v string) (InstallationSpec, error) {
	var in InstallationSpec
	id, acct, ok := strings.Cut(v, "=")
	if !ok {
		return in, fmt.Errorf("--installation %q: want ID=ACCOUNT[@APPID]", v)
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return in, fmt.Errorf("--installation %q: %q is not a positive number", v, id)
	}
	in.ID = n
	if a, app, ok := strings.Cut(acct, "@"); ok {
		in.AppID, err = strconv.ParseInt(app, 10, 64)
		if err != nil || in.AppID <= 0 {
			return in, fmt.Errorf("--installation %q: app id %q is not a positive number", v, app)
		}
		acct = a
	}
	in.Type = "Organization"
	if strings.HasPrefix(acct, "user:") {
		in.Type, acct = "User", strings.TrimPrefix(acct, "user:")
	}
	if acct == "" || strings.Contains(acct, "/") {
		return in, fmt.Errorf("--installation %q: bad account", v)
	}
	in.Account = acct
	return in, nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for ca.pem and info.json (required)")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	var hosts, apps, insts, pats multiFlag
	fs.Var(&hosts, "host", "extra name or IP for the certificate; the first one names the URLs")
	fs.Var(&apps, "app", "ID=PUBKEY_PEM_FILE: a GitHub App and its RSA public key")
	fs.Var(&insts, "installation", "ID=ACCOUNT[@APPID]: installs an app on an org or user")
	fs.Var(&pats, "pat", "a personal access token valid for every scope")
	instTTL := fs.Duration("installation-token-ttl", time.Hour, "lifetime of installation tokens")
	regTTL := fs.Duration("registration-token-ttl", time.Hour, "lifetime of registration/remove tokens")
	idle := fs.Duration("session-idle", defaultSessionIdle, "drop a runner session after this long without a message poll")
	logFile := fs.String("log", "", "request log file (default stderr)")
	caCert := fs.String("ca-cert", "", "CA certificate (PEM) to sign the serving certificate with (default: a fresh CA)")
	caKey := fs.String("ca-key", "", "the private key (PEM) of --ca-cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *instTTL <= 0 || *regTTL <= 0 || *idle <= 0 {
		return errors.New("serve: --installation-token-ttl, --registration-token-ttl and --session-idle must be positive")
	}
	if *dir == "" || fs.NArg() > 0 {
		return errors.New("serve: --dir is required and there are no positional arguments\n" + usage)
	}
	// A given CA is checked before anything starts, so that a bad one fails fast.
	var ca *CA
	var err error
	switch {
	case (*caCert == "") != (*caKey == ""):
		return errors.New("serve: --ca-cert and --ca-key go together (give both or neither)")
	case *caCert != "":
		ca, err = loadCA(*caCert, *caKey)
	default:
		ca, err = newCA()
	}
	if err != nil {
		return err
	}
	cfg := Config{Apps: map[int64]*App{}, PATs: pats, InstallationTokenTTL: *instTTL, RegistrationTokenTTL: *regTTL,
		SessionIdle: *idle}
	for _, a := range apps {
		id, file, ok := strings.Cut(a, "=")
		n, err := strconv.ParseInt(id, 10, 64)
		if !ok || err != nil || n <= 0 {
			return fmt.Errorf("--app %q: want ID=PUBKEY_PEM_FILE with a positive numeric ID", a)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--app %d: %w", n, err)
		}
		key, err := ParseRSAPublicKey(b)
		if err != nil {
			return fmt.Errorf("--app %d: %s: %w", n, file, err)
		}
		cfg.Apps[n] = &App{ID: n, Key: key}
	}
	for _, v := range insts {
		in, err := parseInstallation(v)
		if err != nil {
			return err
		}
		cfg.Installations = append(cfg.Installations, in)
	}
	var logw io.Writer = os.Stderr
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	cfg.Log = log.New(logw, "github-standin: ", log.LstdFlags|log.Lmicroseconds)
	srv, err := NewServer(cfg)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	cert, err := ca.ServingCert(hosts)
	if err != nil {
		return err
	}
	caFile := filepath.Join(absDir, "ca.pem")
	if err := writeAtomic(caFile, ca.PEM()); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	host := "127.0.0.1"
	if len(hosts) > 0 {
		host = hosts[0]
	}
	base := "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	srv.SetBaseURL(base)

	hs := &http.Server{
		Handler:           srv,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(logw, "github-standin: http: ", log.LstdFlags),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()

	info, _ := json.Marshal(Info{URL: base, APIURL: base + "/api/v3", CAFile: caFile, PID: os.Getpid()})
	if err := writeAtomic(filepath.Join(absDir, "info.json"), append(info, '\n')); err != nil {
		return err
	}
	cfg.Log.Printf("serving %s (api %s/api/v3)", base, base)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	cfg.Log.Printf("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if hs.Shutdown(sctx) != nil {
		hs.Close() // long polls still open
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func show(args []string) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	dir := fs.String("dir", "", "the directory given to serve --dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("show: --dir is required")
	}
	b, err := os.ReadFile(filepath.Join(*dir, "info.json"))
	if err != nil {
		return err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return fmt.Errorf("info.json: %w", err)
	}
	caPEM, err := os.ReadFile(info.CAFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s: no certificate", info.CAFile)
	}
	cl := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Get(info.URL + "/_standin/state")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET /_standin/state: %s", resp.Status)
	}
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return err
	}
	fmt.Print(RenderText(st))
	return nil
}
