package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// regTokenZone: GitHub answers registration/remove tokens' expires_at with a UTC offset
// (its docs show "2020-01-22T12:13:35.123-08:00"); a fixed -08:00 makes clients honour it.
var regTokenZone = time.FixedZone("PST", -8*3600)

var installationPermissions = map[string]string{
	"administration":                   "write",
	"organization_self_hosted_runners": "write",
	"metadata":                         "read",
}

func (s *Server) buildRoutes() {
	api := func(method, tmpl string, auth authKind, h func(*call)) *route {
		rt := newRoute(method, tmpl, auth, h)
		s.apiRoutes = append(s.apiRoutes, rt)
		return rt
	}
	// GitHub App endpoints (JWT).
	api("GET", "/orgs/{org}/installation", authJWT, func(c *call) { c.s.getInstallation(c, c.p["org"]) })
	api("GET", "/repos/{owner}/{repo}/installation", authJWT, func(c *call) { c.s.getInstallation(c, c.p["owner"]) })
	api("GET", "/users/{user}/installation", authJWT, func(c *call) { c.s.getInstallation(c, c.p["user"]) })
	api("POST", "/app/installations/{installation_id}/access_tokens", authJWT, func(c *call) { c.s.createAccessToken(c) })

	// Runner endpoints, for each scope.
	for _, prefix := range []string{"/repos/{owner}/{repo}", "/orgs/{org}", "/enterprises/{enterprise}"} {
		scoped := func(method, rest string, h func(*call)) {
			api(method, prefix+rest, authToken, h).scoped = true
		}
		scoped("POST", "/actions/runners/registration-token", func(c *call) { c.s.createRegToken(c, "register") })
		scoped("POST", "/actions/runners/remove-token", func(c *call) { c.s.createRegToken(c, "remove") })
		scoped("POST", "/actions/runners/generate-jitconfig", func(c *call) { c.s.generateJITConfig(c) })
		scoped("GET", "/actions/runners", func(c *call) { c.s.listRunners(c) })
		scoped("GET", "/actions/runners/{runner_id}", func(c *call) { c.s.getRunner(c) })
		scoped("DELETE", "/actions/runners/{runner_id}", func(c *call) { c.s.deleteRunner(c) })
		if prefix != "/repos/{owner}/{repo}" {
			scoped("GET", "/actions/runner-groups", func(c *call) { c.s.listRunnerGroups(c) })
		}
	}

	// The runner's own call (GitHub's real one) and the stand-in's pipelines service.
	api("POST", "/actions/runner-registration", authRemote, func(c *call) { c.s.runnerRegistration(c) })
	svc := func(method, tmpl string, auth authKind, h func(*call)) {
		s.svcRoutes = append(s.svcRoutes, newRoute(method, tmpl, auth, h))
	}
	svc("POST", "/agents", authSession, func(c *call) { c.s.addAgent(c) })
	svc("DELETE", "/agents/{agent_id}", authSession, func(c *call) { c.s.deleteAgent(c) })
	svc("POST", "/sessions", authRunner, func(c *call) { c.s.createSession(c) })
	svc("DELETE", "/sessions/{session_id}", authRunner, func(c *call) { c.s.deleteSession(c) })
	svc("GET", "/sessions/{session_id}/messages", authRunner, func(c *call) { c.s.getMessage(c) })
	svc("POST", "/jobs/{job_id}/complete", authRunner, func(c *call) { c.s.completeJob(c) })
}

// ---- App endpoints ----

type accountJSON struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
}

type installationJSON struct {
	ID                  int64             `json:"id"`
	Account             accountJSON       `json:"account"`
	AppID               int64             `json:"app_id"`
	TargetID            int64             `json:"target_id"`
	TargetType          string            `json:"target_type"`
	Permissions         map[string]string `json:"permissions"`
	Events              []string          `json:"events"`
	RepositorySelection string            `json:"repository_selection"`
	AccessTokensURL     string            `json:"access_tokens_url"`
	RepositoriesURL     string            `json:"repositories_url"`
}

func (s *Server) getInstallation(c *call, owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.installations {
		if in.AppID == c.cred.appID && in.CoversOwner(owner) {
			c.json(200, installationJSON{
				ID: in.ID, Account: accountJSON{Login: in.Account, ID: in.AccountID, Type: in.Type},
				AppID: in.AppID, TargetID: in.AccountID, TargetType: in.Type,
				Permissions: installationPermissions, Events: []string{}, RepositorySelection: "all",
				AccessTokensURL: fmt.Sprintf("%s/app/installations/%d/access_tokens", s.APIURL(), in.ID),
				RepositoriesURL: s.APIURL() + "/installation/repositories",
			})
			return
		}
	}
	c.notFound()
}

func (s *Server) createAccessToken(c *call) {
	id, err := strconv.ParseInt(c.p["installation_id"], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.installations[id]
	if err != nil || !ok || in.AppID != c.cred.appID {
		c.notFound()
		return
	}
	tok := "ghs_" + randString(alnum, 36)
	exp := s.now().Add(s.cfg.InstallationTokenTTL).UTC().Truncate(time.Second)
	s.instTokens[tok] = &InstToken{Token: tok, Inst: in, Expires: exp}
	s.instIssued++
	s.addSecretLocked(tok)
	c.json(201, struct {
		Token               string            `json:"token"`
		ExpiresAt           string            `json:"expires_at"`
		Permissions         map[string]string `json:"permissions"`
		RepositorySelection string            `json:"repository_selection"`
	}{tok, exp.Format(time.RFC3339), installationPermissions, "all"})
}

// ---- runner endpoints ----

func (s *Server) createRegToken(c *call, kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := randString(upperAlnum, 29)
	exp := s.now().Add(s.cfg.RegistrationTokenTTL)
	s.regTokens[tok] = &RegToken{Token: tok, Kind: kind, Scope: c.scope, Expires: exp}
	s.addSecretLocked(tok)
	c.json(201, struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}{tok, exp.In(regTokenZone).Format("2006-01-02T15:04:05.000-07:00")})
}

type runnerJSON struct {
	ID            int64   `json:"id"`
	Name          string  `json:"name"`
	OS            string  `json:"os"`
	Status        string  `json:"status"`
	Busy          bool    `json:"busy"`
	Ephemeral     bool    `json:"ephemeral"`
	RunnerGroupID int64   `json:"runner_group_id"`
	Labels        []Label `json:"labels"`
}

func (r *Runner) JSON() runnerJSON {
	st := "offline"
	if r.Online() {
		st = "online"
	}
	labels := r.Labels
	if labels == nil {
		labels = []Label{}
	}
	return runnerJSON{ID: r.ID, Name: r.Name, OS: "Linux", Status: st, Busy: r.Busy(),
		Ephemeral: r.Ephemeral, RunnerGroupID: r.GroupID, Labels: labels}
}

// invalid422 is GitHub's schema-validation answer.
func (c *call) invalid422(detail string) {
	c.fail(422, "Invalid request.\n\n"+detail)
}

func (s *Server) generateJITConfig(c *call) {
	var body map[string]json.RawMessage
	if !c.decodeBody(&body) {
		return
	}
	for _, k := range []string{"name", "runner_group_id", "labels"} {
		if _, ok := body[k]; !ok {
			c.invalid422(fmt.Sprintf("%q wasn't supplied.", k))
			return
		}
	}
	var name string
	if json.Unmarshal(body["name"], &name) != nil {
		c.invalid422(fmt.Sprintf("For 'properties/name', %s is not a string.", body["name"]))
		return
	}
	var groupID int64
	if json.Unmarshal(body["runner_group_id"], &groupID) != nil {
		c.invalid422(fmt.Sprintf("For 'properties/runner_group_id', %s is not an integer.", body["runner_group_id"]))
		return
	}
	var labels []string
	if json.Unmarshal(body["labels"], &labels) != nil || labels == nil {
		c.invalid422(fmt.Sprintf("For 'properties/labels', %s is not an array of strings.", body["labels"]))
		return
	}
	if len(labels) == 0 {
		c.invalid422("For 'properties/labels', [] should contain at least 1 item(s).")
		return
	}
	work := "_work"
	if raw, ok := body["work_folder"]; ok {
		if json.Unmarshal(raw, &work) != nil {
			c.invalid422(fmt.Sprintf("For 'properties/work_folder', %s is not a string.", raw))
			return
		}
	}
	if strings.TrimSpace(name) == "" {
		c.invalid422(`"name" wasn't supplied.`)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapLocked()
	g := s.groupByIDLocked(c.scope, groupID)
	if g == nil {
		c.notFound()
		return
	}
	if s.findRunnerByNameLocked(c.scope, name) != nil {
		c.fail(409, fmt.Sprintf("Already exists - A runner with the name %s already exists.", name))
		return
	}
	r := &Runner{ID: s.newIDLocked(), Name: name, Scope: c.scope, Ephemeral: true, JIT: true,
		GroupID: g.ID, RegisteredBy: "jit", Credential: "rcred_" + randString(alnum, 40), WorkFolder: work}
	for _, l := range labels {
		r.Labels = appendLabel(r.Labels, s.labelLocked(l, "custom"))
	}
	s.runners = append(s.runners, r)
	s.creds[r.Credential] = r
	s.addSecretLocked(r.Credential)
	enc := s.encodeJIT(r, g)
	s.addSecretLocked(enc)
	c.json(201, struct {
		Runner           runnerJSON `json:"runner"`
		EncodedJITConfig string     `json:"encoded_jit_config"`
	}{r.JSON(), enc})
}

func appendLabel(ls []Label, l Label) []Label {
	for _, x := range ls {
		if strings.EqualFold(x.Name, l.Name) {
			return ls
		}
	}
	return append(ls, l)
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.StdEncoding.EncodeToString(b)
}

// encodeJIT builds a JIT config shaped like the real runner's: base64 of a JSON object holding
// the base64 of the runner's .runner, .credentials and .credentials_rsaparams files.
func (s *Server) encodeJIT(r *Runner, g *RunnerGroup) string {
	runnerFile := struct {
		AgentID    int64  `json:"AgentId"`
		AgentName  string `json:"AgentName"`
		PoolID     int64  `json:"PoolId"`
		PoolName   string `json:"PoolName"`
		ServerURL  string `json:"ServerUrl"`
		GitHubURL  string `json:"GitHubUrl"`
		WorkFolder string `json:"WorkFolder"`
		Ephemeral  bool   `json:"Ephemeral"`
	}{r.ID, r.Name, g.ID, g.Name, s.baseURL + "/_services/pipelines", s.baseURL + "/" + r.Scope.WebPath(), r.WorkFolder, true}
	creds := map[string]any{"Scheme": "OAuth", "Data": map[string]string{
		"ClientId": newUUID(), "AuthorizationUrl": s.baseURL + "/_services/token", "Token": r.Credential}}
	outer := map[string]string{
		".runner":                b64json(runnerFile),
		".credentials":           b64json(creds),
		".credentials_rsaparams": base64.StdEncoding.EncodeToString([]byte("{}")),
	}
	return b64json(outer)
}

// pageParams reads per_page (default 30, max 100) and page (from 1).
func pageParams(q url.Values) (perPage, page int) {
	perPage, page = 30, 1
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	return
}

// withPage returns the raw query with page set to p, every other parameter kept in place.
func withPage(rawQuery string, p int) string {
	var parts []string
	replaced := false
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, _, _ := strings.Cut(part, "=")
		if k == "page" {
			if replaced {
				continue
			}
			part, replaced = "page="+strconv.Itoa(p), true
		}
		parts = append(parts, part)
	}
	if !replaced {
		parts = append(parts, "page="+strconv.Itoa(p))
	}
	return strings.Join(parts, "&")
}

// LinkHeader builds GitHub's pagination Link header ("" when everything fits on page 1).
// Order as GitHub sends it: prev, next, last, first.
func LinkHeader(base, rawQuery string, page, perPage, total int) string {
	last := (total + perPage - 1) / perPage
	if last < 1 {
		last = 1
	}
	var links []string
	add := func(p int, rel string) {
		links = append(links, fmt.Sprintf("<%s?%s>; rel=%q", base, withPage(rawQuery, p), rel))
	}
	if page > 1 {
		add(page-1, "prev")
	}
	if page < last {
		add(page+1, "next")
		add(last, "last")
	}
	if page > 1 {
		add(1, "first")
	}
	return strings.Join(links, ", ")
}

// paginate slices n items for the call's page and sets the Link header.
func (c *call) paginate(n int) (from, to int) {
	perPage, page := pageParams(c.r.URL.Query())
	if l := LinkHeader(c.s.APIURL()+strings.TrimPrefix(c.r.URL.Path, "/api/v3"), c.r.URL.RawQuery, page, perPage, n); l != "" {
		c.w.Header().Set("Link", l)
	}
	from = min((page-1)*perPage, n)
	to = min(from+perPage, n)
	return
}

func (s *Server) listRunners(c *call) {
	name := c.r.URL.Query().Get("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapLocked()
	var rs []*Runner
	for _, r := range s.liveRunnersLocked() {
		if r.Scope == c.scope && (name == "" || r.Name == name) {
			rs = append(rs, r)
		}
	}
	sortedRunners(rs)
	from, to := c.paginate(len(rs))
	out := []runnerJSON{}
	for _, r := range rs[from:to] {
		out = append(out, r.JSON())
	}
	c.json(200, struct {
		TotalCount int          `json:"total_count"`
		Runners    []runnerJSON `json:"runners"`
	}{len(rs), out})
}

func (s *Server) runnerFromPathLocked(c *call) *Runner {
	id, err := strconv.ParseInt(c.p["runner_id"], 10, 64)
	if err != nil {
		return nil
	}
	for _, r := range s.runners {
		if r.ID == id && !r.Removed && r.Scope == c.scope {
			return r
		}
	}
	return nil
}

func (s *Server) getRunner(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapLocked()
	r := s.runnerFromPathLocked(c)
	if r == nil {
		c.notFound()
		return
	}
	c.json(200, r.JSON())
}

func (s *Server) deleteRunner(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapLocked()
	r := s.runnerFromPathLocked(c)
	if r == nil {
		c.notFound()
		return
	}
	if r.Busy() {
		c.fail(422, fmt.Sprintf("Bad request - Runner %q is still running a job\"", r.Name))
		return
	}
	s.removeRunnerLocked(r, "Canceled")
	c.w.WriteHeader(204)
}

type runnerGroupJSON struct {
	ID                           int64    `json:"id"`
	Name                         string   `json:"name"`
	Visibility                   string   `json:"visibility"`
	Default                      bool     `json:"default"`
	RunnersURL                   string   `json:"runners_url"`
	Inherited                    bool     `json:"inherited"`
	AllowsPublicRepositories     bool     `json:"allows_public_repositories"`
	RestrictedToWorkflows        bool     `json:"restricted_to_workflows"`
	SelectedWorkflows            []string `json:"selected_workflows"`
	WorkflowRestrictionsReadOnly bool     `json:"workflow_restrictions_read_only"`
}

func (s *Server) listRunnerGroups(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gs := s.groupsLocked(c.scope)
	from, to := c.paginate(len(gs))
	out := []runnerGroupJSON{}
	for _, g := range gs[from:to] {
		out = append(out, runnerGroupJSON{ID: g.ID, Name: g.Name, Visibility: "all", Default: g.ID == 1,
			RunnersURL:        fmt.Sprintf("%s%s/actions/runner-groups/%d/runners", s.APIURL(), c.scope.APIPrefix(), g.ID),
			SelectedWorkflows: []string{}})
	}
	c.json(200, struct {
		TotalCount   int               `json:"total_count"`
		RunnerGroups []runnerGroupJSON `json:"runner_groups"`
	}{len(gs), out})
}
