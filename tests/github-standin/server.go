package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	apiVersion    = "2022-11-28"
	docsURL       = "https://docs.github.com/rest"
	rateDocsURL   = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
	secondaryDocs = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	// By default a session whose runner has had no message poll in flight for this long is
	// dropped (its runner goes offline), so a runner that crashed can open a new one.
	defaultSessionIdle = 30 * time.Second
	maxPollWait        = 50 * time.Second
)

type InstallationSpec struct {
	ID      int64
	AppID   int64 // 0: the only app
	Account string
	Type    string
}

type Config struct {
	Apps                 map[int64]*App
	Installations        []InstallationSpec
	PATs                 []string
	InstallationTokenTTL time.Duration
	RegistrationTokenTTL time.Duration
	SessionIdle          time.Duration
	Now                  func() time.Time
	Log                  *log.Logger
}

type Server struct {
	cfg     Config
	baseURL string // https://HOST:PORT

	apiRoutes []*route
	svcRoutes []*route

	mu            sync.Mutex
	nextID        int64
	faultSeq      int64
	accounts      map[string]int64 // login (lower) -> id
	installations map[int64]*Installation
	pats          map[string]int64 // PAT -> user id
	instTokens    map[string]*InstToken
	regTokens     map[string]*RegToken
	sessTokens    map[string]*SessionToken
	runners       []*Runner // every runner ever, in creation order (Removed ones too)
	creds         map[string]*Runner
	sessions      map[string]*Session
	groups        []*RunnerGroup
	jobs          []*Job
	labelIDs      map[string]int64
	rate          map[string]*rateBucket
	faults        []*Fault
	requests      []*RequestRecord
	counts        map[string]int
	secrets       []string
	instIssued    int
	jwtAccepted   int
}

func NewServer(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.InstallationTokenTTL == 0 {
		cfg.InstallationTokenTTL = time.Hour
	}
	if cfg.RegistrationTokenTTL == 0 {
		cfg.RegistrationTokenTTL = time.Hour
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = defaultSessionIdle
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	if cfg.Apps == nil {
		cfg.Apps = map[int64]*App{}
	}
	s := &Server{
		cfg:           cfg,
		baseURL:       "https://127.0.0.1",
		nextID:        100,
		accounts:      map[string]int64{},
		installations: map[int64]*Installation{},
		pats:          map[string]int64{},
		instTokens:    map[string]*InstToken{},
		regTokens:     map[string]*RegToken{},
		sessTokens:    map[string]*SessionToken{},
		creds:         map[string]*Runner{},
		sessions:      map[string]*Session{},
		labelIDs:      map[string]int64{},
		rate:          map[string]*rateBucket{},
		counts:        map[string]int{},
	}
	for _, in := range cfg.Installations {
		appID := in.AppID
		if appID == 0 {
			if len(cfg.Apps) != 1 {
				return nil, fmt.Errorf("--installation %d=%s: name the app (ID=ACCOUNT@APPID) when there is not exactly one --app", in.ID, in.Account)
			}
			for id := range cfg.Apps {
				appID = id
			}
		}
		if _, ok := cfg.Apps[appID]; !ok {
			return nil, fmt.Errorf("--installation %d: no --app %d", in.ID, appID)
		}
		if _, dup := s.installations[in.ID]; dup {
			return nil, fmt.Errorf("--installation %d given twice", in.ID)
		}
		typ := in.Type
		if typ == "" {
			typ = "Organization"
		}
		s.installations[in.ID] = &Installation{ID: in.ID, AppID: appID, Account: in.Account,
			AccountID: s.accountIDLocked(in.Account), Type: typ}
	}
	for i, p := range cfg.PATs {
		s.pats[p] = int64(5001 + i)
		s.secrets = append(s.secrets, p)
	}
	s.buildRoutes()
	return s, nil
}

// SetBaseURL sets the URL the stand-in names itself by (https://HOST:PORT).
func (s *Server) SetBaseURL(u string) { s.baseURL = strings.TrimRight(u, "/") }
func (s *Server) APIURL() string      { return s.baseURL + "/api/v3" }
func (s *Server) now() time.Time      { return s.cfg.Now() }

func (s *Server) newIDLocked() int64 { s.nextID++; return s.nextID }

func (s *Server) accountIDLocked(login string) int64 {
	k := strings.ToLower(login)
	if id, ok := s.accounts[k]; ok {
		return id
	}
	id := int64(1000 + len(s.accounts))
	s.accounts[k] = id
	return id
}

func (s *Server) addSecretLocked(v string) { s.secrets = append(s.secrets, v) }

// ---- routing ----

type authKind int

const (
	authJWT     authKind = iota // a GitHub App JWT
	authToken                   // an installation token or a PAT
	authRemote                  // RemoteAuth registration/remove token (runner-registration)
	authSession                 // pipelines: session token from runner-registration
	authRunner                  // pipelines: runner credential
)

type route struct {
	method string
	tmpl   string
	segs   []string
	auth   authKind
	scoped bool // runner endpoints: the scope comes from the path
	h      func(*call)
}

type call struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	p     map[string]string
	route *route
	cred  *credential
	scope Scope
	rec   *RequestRecord

	sessTok *SessionToken // pipelines calls with a session token
	runner  *Runner       // pipelines calls with a runner credential
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func newRoute(method, tmpl string, auth authKind, h func(*call)) *route {
	return &route{method: method, tmpl: tmpl, segs: splitPath(tmpl), auth: auth, h: h}
}

// match finds the route for a method and path (nil when none: GitHub answers 404 for an
// unknown path and for a known path with another method alike).
func match(routes []*route, method, path string) (*route, map[string]string) {
	segs := splitPath(path)
	for _, rt := range routes {
		if rt.method != method || len(rt.segs) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, t := range rt.segs {
			if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
				if segs[i] == "" {
					ok = false
					break
				}
				params[t[1:len(t)-1]] = segs[i]
			} else if t != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return rt, params
		}
	}
	return nil, nil
}

// ---- responses ----

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	if v == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"message":"Server Error"}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type ghError struct {
	Message string `json:"message"`
	DocURL  string `json:"documentation_url,omitempty"`
	Status  string `json:"status,omitempty"`
}

func (c *call) json(status int, v any) { writeJSON(c.w, status, v) }

func (c *call) fail(status int, msg string) {
	e := ghError{Message: msg, DocURL: docsURL}
	if status == http.StatusUnauthorized {
		e.Status = "401"
	}
	writeJSON(c.w, status, e)
}

func (c *call) notFound() { c.fail(404, "Not Found") }

// decodeBody reads a JSON object body; on failure it answers 400 like GitHub and returns false.
func (c *call) decodeBody(v any) bool {
	b, err := io.ReadAll(io.LimitReader(c.r.Body, 1<<20))
	if err != nil || json.Unmarshal(b, v) != nil {
		c.fail(400, "Problems parsing JSON")
		return false
	}
	return true
}

// ---- HTTP entry point ----

func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	// Read the whole body first: an HTTP/2 stream whose body a handler left unread ends with
	// RST_STREAM, which some clients (curl 7.88) report as a framing error.
	if r.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	path := r.URL.Path
	var rec *RequestRecord
	switch {
	case path == "/api/v3" || strings.HasPrefix(path, "/api/v3/"):
		rec = s.record(r)
		s.serveAPI(w, r, rec)
	case strings.HasPrefix(path, "/_services/pipelines/"):
		rec = s.record(r)
		s.serveServices(w, r, rec)
	case path == "/_standin" || strings.HasPrefix(path, "/_standin/"):
		s.serveTestAPI(w, r)
	default:
		writeJSON(w, 404, ghError{Message: "Not Found", DocURL: docsURL})
	}
	if w.status == 0 {
		w.status = 200
		if r.Context().Err() != nil {
			w.status = 499 // the client went away (a long poll it gave up); nothing was sent
		}
	}
	if rec != nil {
		s.mu.Lock()
		rec.Status = w.status
		if rec.Route != "" {
			s.counts[rec.Route]++
		}
		s.mu.Unlock()
	}
	// Never a token, JWT or JIT config: only the method, the path (no query) and the status.
	s.cfg.Log.Printf("%s %s %d %dms", r.Method, path, w.status, time.Since(start).Milliseconds())
}

func (s *Server) record(r *http.Request) *RequestRecord {
	rec := &RequestRecord{Method: r.Method, Path: r.URL.Path, UserAgent: r.Header.Get("User-Agent"),
		Accept: r.Header.Get("Accept"), APIVersion: r.Header.Get("X-GitHub-Api-Version")}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	return rec
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, rec *RequestRecord) {
	sub := strings.TrimPrefix(r.URL.Path, "/api/v3")
	rt, params := match(s.apiRoutes, r.Method, sub)
	tmpl := "(no route)"
	if rt != nil {
		tmpl = rt.tmpl
	}
	s.mu.Lock()
	rec.Route = r.Method + " " + tmpl
	s.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-GitHub-Api-Version-Selected", apiVersion)
	reqID := newRequestID()
	h.Set("X-GitHub-Request-Id", reqID)
	c := &call{s: s, w: w, r: r, p: params, route: rt, rec: rec}

	if r.Header.Get("User-Agent") == "" {
		c.fail(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.")
		return
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && v != apiVersion {
		c.fail(400, fmt.Sprintf("Unsupported 'X-GitHub-Api-Version' header: %s. Supported versions are: %s", v, apiVersion))
		return
	}
	runnerSide := rt != nil && rt.auth == authRemote
	if !runnerSide && s.applyFaults(c, reqID) {
		return
	}
	if rt == nil {
		c.notFound()
		return
	}
	if !s.authenticate(c) {
		return
	}
	if c.cred != nil && !s.rateLimit(c) {
		return
	}
	if rt.scoped {
		switch {
		case params["org"] != "":
			c.scope = orgScope(params["org"])
		case params["enterprise"] != "":
			c.scope = entScope(params["enterprise"])
		default:
			c.scope = repoScope(params["owner"], params["repo"])
		}
		if !s.authorizeScope(c) {
			return
		}
	}
	rt.h(c)
}

// ---- faults (the test API's /_standin/faults) ----

// applyFaults runs the faults that hit this call before authentication; it returns true when
// one of them answered the call.
func (s *Server) applyFaults(c *call, reqID string) bool {
	path := c.r.URL.Path
	var delay time.Duration
	var answer *Fault
	s.mu.Lock()
	kept := s.faults[:0]
	for _, f := range s.faults {
		hit := f.Count > 0 && (f.Path == "" || strings.Contains(path, f.Path)) && f.Kind != "primary_rate_limit"
		if hit && f.Kind != "slow" && answer != nil {
			hit = false // one answer per call
		}
		if hit {
			f.Count--
			if f.Kind == "slow" {
				delay += time.Duration(f.DelayMS) * time.Millisecond
			} else {
				cp := *f
				answer = &cp
			}
		}
		if f.Count > 0 {
			kept = append(kept, f)
		}
	}
	s.faults = kept
	s.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-c.r.Context().Done():
		}
	}
	if answer == nil {
		return false
	}
	switch answer.Kind {
	case "status":
		msg := "Server Error"
		if answer.Status == 503 {
			msg = "Service Unavailable"
		}
		writeJSON(c.w, answer.Status, ghError{Message: msg, DocURL: docsURL})
	case "secondary_rate_limit":
		status := answer.Status
		if status == 0 {
			status = 403
		}
		c.w.Header().Set("Retry-After", strconv.Itoa(answer.RetryAfter))
		writeJSON(c.w, status, ghError{Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID " + reqID + ".", DocURL: secondaryDocs})
	}
	return true
}

// rateLimit counts the call against its credential, sets the x-ratelimit-* headers and answers
// 403 when the credential has none left.
func (s *Server) rateLimit(c *call) bool {
	now := s.now()
	key := c.cred.rateKey
	s.mu.Lock()
	b := s.rate[key]
	if b == nil || !now.Before(b.WindowStart.Add(time.Hour)) {
		b = &rateBucket{WindowStart: now}
		s.rate[key] = b
	}
	// An armed primary_rate_limit fault spends the rest of this window until now+reset_in.
	kept := s.faults[:0]
	for _, f := range s.faults {
		if f.Kind == "primary_rate_limit" && f.Count > 0 && (f.Path == "" || strings.Contains(c.r.URL.Path, f.Path)) {
			f.Count--
			b.WindowStart = now.Add(time.Duration(f.ResetIn)*time.Second - time.Hour)
			b.Used = rateLimit
		}
		if f.Count > 0 {
			kept = append(kept, f)
		}
	}
	s.faults = kept
	exhausted := b.Used >= rateLimit
	if !exhausted {
		b.Used++
	}
	used, reset := b.Used, b.WindowStart.Add(time.Hour).Unix()
	s.mu.Unlock()

	h := c.w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(rateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rateLimit-used))
	h.Set("X-RateLimit-Used", strconv.Itoa(used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	h.Set("X-RateLimit-Resource", "core")
	if exhausted {
		writeJSON(c.w, 403, ghError{Message: "API rate limit exceeded for " + c.cred.rateName + ".", DocURL: rateDocsURL})
		return false
	}
	return true
}

// ---- state helpers ----

// reapLocked drops sessions whose runner stopped polling (it crashed or was killed).
func (s *Server) reapLocked() {
	now := s.now()
	for _, sess := range s.sessions {
		if !sess.Ended && sess.Polling == 0 && now.Sub(sess.LastSeen) > s.cfg.SessionIdle {
			s.endSessionLocked(sess, "Abandoned")
		}
	}
}

// endSessionLocked closes a session: the runner goes offline; a job it was running ends with
// result (a job not yet handed over goes back to the queue).
func (s *Server) endSessionLocked(sess *Session, result string) {
	if sess.Ended {
		return
	}
	sess.Ended = true
	sess.wake()
	r := sess.Runner
	if r.Session == sess {
		r.Session = nil
	}
	if j := r.Job; j != nil {
		r.Job = nil
		if !j.Delivered {
			j.Status, j.Runner, j.RunnerName = "queued", nil, ""
		} else {
			j.Status, j.Result = "completed", result
			if r.Ephemeral {
				s.removeRunnerLocked(r, result)
			}
		}
	}
	s.assignLocked()
}

func (s *Server) removeRunnerLocked(r *Runner, jobResult string) {
	if r.Removed {
		return
	}
	r.Removed = true
	if r.Session != nil {
		s.endSessionLocked(r.Session, jobResult)
	}
}

func (s *Server) liveRunnersLocked() []*Runner {
	var out []*Runner
	for _, r := range s.runners {
		if !r.Removed {
			out = append(out, r)
		}
	}
	return out
}

func (s *Server) findRunnerByNameLocked(sc Scope, name string) *Runner {
	for _, r := range s.runners {
		if !r.Removed && r.Scope == sc && strings.EqualFold(r.Name, name) {
			return r
		}
	}
	return nil
}

func (s *Server) groupsLocked(owner Scope) []*RunnerGroup {
	out := []*RunnerGroup{{ID: 1, Name: "Default", Owner: owner}}
	if owner.IsZero() {
		return out
	}
	for _, g := range s.groups {
		if g.Owner == owner {
			out = append(out, g)
		}
	}
	return out
}

func (s *Server) groupByIDLocked(sc Scope, id int64) *RunnerGroup {
	for _, g := range s.groupsLocked(sc.GroupOwner()) {
		if g.ID == id {
			return g
		}
	}
	return nil
}

func (s *Server) groupByNameLocked(sc Scope, name string) *RunnerGroup {
	for _, g := range s.groupsLocked(sc.GroupOwner()) {
		if strings.EqualFold(g.Name, name) {
			return g
		}
	}
	return nil
}

func (s *Server) labelLocked(name, typ string) Label {
	k := strings.ToLower(name)
	id, ok := s.labelIDs[k]
	if !ok {
		id = int64(len(s.labelIDs) + 1)
		s.labelIDs[k] = id
	}
	return Label{ID: id, Name: name, Type: typ}
}

// assignLocked hands queued jobs (oldest first) to online, idle runners whose labels include
// every job label and whose scope covers the job's.
func (s *Server) assignLocked() {
	for _, j := range s.jobs {
		if j.Status != "queued" {
			continue
		}
		var pick *Runner
		for _, r := range s.runners {
			if !r.Removed && r.Online() && !r.Busy() && r.Scope.Covers(j.Scope) && r.HasLabels(j.Labels) {
				pick = r
				break
			}
		}
		if pick == nil {
			continue
		}
		j.Status, j.Runner, j.RunnerName = "running", pick, pick.Name
		pick.Job = j
		pick.Session.Queue = append(pick.Session.Queue, Message{Type: "job", JobID: j.ID, Name: j.Name})
		pick.Session.wake()
	}
}

func sortedRunners(rs []*Runner) []*Runner {
	sort.Slice(rs, func(i, k int) bool { return rs[i].ID < rs[k].ID })
	return rs
}
