package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The runner's side. POST /api/v3/actions/runner-registration is GitHub's real call (what
// config.sh makes with its registration or remove token); everything under
// /_services/pipelines is a minimal stand-in of the Actions service, which GitHub does not
// document: its paths and JSON are this program's own.

func (s *Server) runnerRegistration(c *call) {
	scheme, tok, ok := authHeader(c.r)
	var body struct {
		URL         string `json:"url"`
		RunnerEvent string `json:"runner_event"`
	}
	if !c.decodeBody(&body) {
		return
	}
	event := body.RunnerEvent
	if event == "" {
		event = "register"
	}
	sc, scopeOK := ScopeFromWebURL(body.URL)
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.regTokens[tok]
	if !ok || scheme != "remoteauth" || !scopeOK || rt == nil || rt.Used || rt.Kind != event ||
		rt.Scope != sc || !s.now().Before(rt.Expires) {
		c.notFound()
		return
	}
	rt.Used = true // one-time (see README)
	st := &SessionToken{Token: "sess_" + randString(alnum, 40), Kind: event, Scope: sc,
		Expires: s.now().Add(time.Hour)}
	s.sessTokens[st.Token] = st
	s.addSecretLocked(st.Token)
	c.json(200, struct {
		URL         string `json:"url"`
		Token       string `json:"token"`
		TokenSchema string `json:"token_schema"`
	}{s.baseURL + "/_services/pipelines", st.Token, "OAuthAccessToken"})
}

func (c *call) svcFail(status int, msg string) {
	writeJSON(c.w, status, map[string]string{"message": msg})
}

func (s *Server) serveServices(w http.ResponseWriter, r *http.Request, rec *RequestRecord) {
	sub := strings.TrimPrefix(r.URL.Path, "/_services/pipelines")
	rt, params := match(s.svcRoutes, r.Method, sub)
	tmpl := "(no route)"
	if rt != nil {
		tmpl = rt.tmpl
	}
	s.mu.Lock()
	rec.Route = r.Method + " /_services/pipelines" + tmpl
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c := &call{s: s, w: w, r: r, p: params, route: rt, rec: rec}
	if rt == nil {
		c.svcFail(404, "Not Found")
		return
	}
	scheme, tok, ok := authHeader(r)
	if !ok || scheme != "bearer" {
		c.svcFail(401, "Bad credentials")
		return
	}
	s.mu.Lock()
	switch rt.auth {
	case authSession:
		st := s.sessTokens[tok]
		if st == nil || !s.now().Before(st.Expires) {
			s.mu.Unlock()
			c.svcFail(401, "Bad credentials")
			return
		}
		c.sessTok = st
	case authRunner:
		run := s.creds[tok]
		if run == nil {
			s.mu.Unlock()
			c.svcFail(401, "Bad credentials")
			return
		}
		c.runner = run
	}
	s.mu.Unlock()
	rt.h(c)
}

func (s *Server) addAgent(c *call) {
	var body struct {
		Name        string   `json:"name"`
		Labels      []string `json:"labels"`
		RunnerGroup string   `json:"runner_group"`
		Ephemeral   bool     `json:"ephemeral"`
		Replace     bool     `json:"replace"`
		WorkFolder  string   `json:"work_folder"`
	}
	if !c.decodeBody(&body) {
		return
	}
	if c.sessTok.Kind != "register" {
		c.svcFail(403, "This token may only remove runners")
		return
	}
	if strings.TrimSpace(body.Name) == "" {
		c.svcFail(400, "A runner name is required")
		return
	}
	if body.RunnerGroup == "" {
		body.RunnerGroup = "Default"
	}
	if body.WorkFolder == "" {
		body.WorkFolder = "_work"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapLocked()
	sc := c.sessTok.Scope
	g := s.groupByNameLocked(sc, body.RunnerGroup)
	if g == nil {
		c.svcFail(404, "Could not find any self-hosted runner group named \""+body.RunnerGroup+"\".")
		return
	}
	if old := s.findRunnerByNameLocked(sc, body.Name); old != nil {
		if !body.Replace {
			c.svcFail(409, "A runner exists with the same name")
			return
		}
		s.removeRunnerLocked(old, "Canceled")
	}
	r := &Runner{ID: s.newIDLocked(), Name: body.Name, Scope: sc, Ephemeral: body.Ephemeral,
		GroupID: g.ID, RegisteredBy: "config.sh", Credential: "rcred_" + randString(alnum, 40),
		WorkFolder: body.WorkFolder}
	for _, l := range []string{"self-hosted", "Linux", "X64"} {
		r.Labels = appendLabel(r.Labels, s.labelLocked(l, "read-only"))
	}
	for _, l := range body.Labels {
		if l = strings.TrimSpace(l); l != "" {
			r.Labels = appendLabel(r.Labels, s.labelLocked(l, "custom"))
		}
	}
	s.runners = append(s.runners, r)
	s.creds[r.Credential] = r
	s.addSecretLocked(r.Credential)
	c.json(200, struct {
		ID         int64  `json:"id"`
		Name       string `json:"name"`
		Credential string `json:"credential"`
	}{r.ID, r.Name, r.Credential})
}

func (s *Server) deleteAgent(c *call) {
	if c.sessTok.Kind != "remove" {
		c.svcFail(403, "This token may only add runners")
		return
	}
	id, err := strconv.ParseInt(c.p["agent_id"], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.runners {
		if err == nil && r.ID == id && !r.Removed && r.Scope == c.sessTok.Scope {
			s.removeRunnerLocked(r, "Canceled")
			c.w.WriteHeader(204)
			return
		}
	}
	c.svcFail(404, "Runner not found")
}

func (s *Server) createSession(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapLocked()
	r := c.runner
	switch {
	case r.JIT && r.CredUsed:
		c.svcFail(409, "This runner's configuration has already been used")
		return
	case r.Removed:
		c.svcFail(401, "Runner registration has been deleted from server")
		return
	case r.Session != nil:
		c.svcFail(409, "A session for this runner already exists.")
		return
	}
	sess := &Session{ID: newUUID(), Runner: r, notify: make(chan struct{}), LastSeen: s.now()}
	s.sessions[sess.ID] = sess
	r.Session = sess
	r.CredUsed = true
	s.assignLocked()
	c.json(200, map[string]string{"session_id": sess.ID})
}

func (s *Server) deleteSession(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[c.p["session_id"]]
	if sess == nil || sess.Runner != c.runner {
		c.svcFail(404, "Session not found")
		return
	}
	s.endSessionLocked(sess, "Canceled")
	c.w.WriteHeader(204)
}

// getMessage is the long poll: it waits (on the session's notify channel) up to ?wait=SECONDS
// (at most 50) for a message.
func (s *Server) getMessage(c *call) {
	wait := maxPollWait
	if v, err := strconv.ParseFloat(c.r.URL.Query().Get("wait"), 64); err == nil && v >= 0 {
		wait = min(time.Duration(v*float64(time.Second)), maxPollWait)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()

	s.mu.Lock()
	sess := s.sessions[c.p["session_id"]]
	if sess == nil || sess.Runner != c.runner || sess.Ended {
		s.mu.Unlock()
		c.svcFail(404, "Session not found")
		return
	}
	sess.Polling++
	done := func() { sess.Polling--; sess.LastSeen = s.now() }
	for {
		if sess.Ended {
			done()
			s.mu.Unlock()
			c.svcFail(404, "Session not found")
			return
		}
		if len(sess.Queue) > 0 {
			m := sess.Queue[0]
			sess.Queue = sess.Queue[1:]
			if m.Type == "job" && sess.Runner.Job != nil && sess.Runner.Job.ID == m.JobID {
				sess.Runner.Job.Delivered = true
			}
			done()
			s.mu.Unlock()
			c.json(200, m)
			return
		}
		ch := sess.notify
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-timer.C:
			s.mu.Lock()
			done()
			s.mu.Unlock()
			c.w.WriteHeader(204)
			return
		case <-c.r.Context().Done():
			s.mu.Lock()
			done()
			s.mu.Unlock()
			return
		}
	}
}

func (s *Server) completeJob(c *call) {
	var body struct {
		Result string `json:"result"`
	}
	if !c.decodeBody(&body) {
		return
	}
	if body.Result == "" {
		body.Result = "Succeeded"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := c.runner
	j := r.Job
	if j == nil || j.ID != c.p["job_id"] {
		c.svcFail(404, "Job not found")
		return
	}
	j.Status, j.Result = "completed", body.Result
	r.Job = nil
	if r.Ephemeral {
		// GitHub removes an ephemeral runner once its job is done.
		s.removeRunnerLocked(r, body.Result)
	}
	s.assignLocked()
	c.w.WriteHeader(204)
}
