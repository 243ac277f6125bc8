package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLinkHeader(t *testing.T) {
	base := "https://h/api/v3/orgs/acme/actions/runners"
	for _, tc := range []struct {
		q                    string
		page, perPage, total int
		want                 string
	}{
		{"", 1, 30, 0, ""},
		{"", 1, 30, 30, ""},
		{"per_page=2", 1, 2, 5,
			`<` + base + `?per_page=2&page=2>; rel="next", <` + base + `?per_page=2&page=3>; rel="last"`},
		{"per_page=2&page=2", 2, 2, 5,
			`<` + base + `?per_page=2&page=1>; rel="prev", <` + base + `?per_page=2&page=3>; rel="next", <` +
				base + `?per_page=2&page=3>; rel="last", <` + base + `?per_page=2&page=1>; rel="first"`},
		{"page=3&per_page=2&name=x", 3, 2, 5,
			`<` + base + `?page=2&per_page=2&name=x>; rel="prev", <` + base + `?page=1&per_page=2&name=x>; rel="first"`},
		{"", 1, 30, 31, `<` + base + `?page=2>; rel="next", <` + base + `?page=2>; rel="last"`},
	} {
		if got := LinkHeader(base, tc.q, tc.page, tc.perPage, tc.total); got != tc.want {
			t.Errorf("LinkHeader(%q, page %d, per %d, total %d)\n got %s\nwant %s", tc.q, tc.page, tc.perPage, tc.total, got, tc.want)
		}
	}
}

func TestListRunnersPagination(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 5; i++ {
		r := h.do("POST", "/api/v3/orgs/acme/actions/runners/generate-jitconfig", "token "+testPAT,
			map[string]any{"name": fmt.Sprintf("r%d", i), "runner_group_id": 1, "labels": []string{"x"}})
		h.wantStatus(r, 201, "")
	}
	r := h.do("GET", "/api/v3/orgs/acme/actions/runners?per_page=2&page=2", "token "+testPAT, nil)
	h.wantStatus(r, 200, "")
	var body struct {
		TotalCount int          `json:"total_count"`
		Runners    []runnerJSON `json:"runners"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.TotalCount != 5 || len(body.Runners) != 2 || body.Runners[0].Name != "r2" || body.Runners[1].Name != "r3" {
		t.Fatalf("page 2: %s", r.body)
	}
	api := h.ts.URL + "/api/v3/orgs/acme/actions/runners"
	want := `<` + api + `?per_page=2&page=1>; rel="prev", <` + api + `?per_page=2&page=3>; rel="next", <` + api +
		`?per_page=2&page=3>; rel="last", <` + api + `?per_page=2&page=1>; rel="first"`
	if got := r.header.Get("Link"); got != want {
		t.Fatalf("Link\n got %s\nwant %s", got, want)
	}
	// name filters exactly; per_page is capped at 100.
	r = h.do("GET", "/api/v3/orgs/acme/actions/runners?name=r4&per_page=500", "token "+testPAT, nil)
	if !strings.Contains(string(r.body), `"total_count":1`) || r.header.Get("Link") != "" {
		t.Fatalf("name filter: %s (Link %q)", r.body, r.header.Get("Link"))
	}
	// Repo runners are a separate scope.
	r = h.do("GET", "/api/v3/repos/acme/app/actions/runners", "token "+testPAT, nil)
	if !strings.Contains(string(r.body), `"total_count":0`) {
		t.Fatalf("repo scope: %s", r.body)
	}
}

func TestCommonHeadersAndRequestRules(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/api/v3/orgs/acme/actions/runners", "token "+testPAT, nil)
	for k, v := range map[string]string{
		"Content-Type":                  "application/json; charset=utf-8",
		"X-GitHub-Api-Version-Selected": "2022-11-28",
		"X-RateLimit-Limit":             "5000",
		"X-RateLimit-Remaining":         "4999",
		"X-RateLimit-Used":              "1",
		"X-RateLimit-Resource":          "core",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if r.header.Get("X-GitHub-Request-Id") == "" || r.header.Get("X-RateLimit-Reset") == "" {
		t.Errorf("missing request id or reset: %v", r.header)
	}
	reset, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
	if d := reset - h.clock.Now().Unix(); d < 3599 || d > 3600 {
		t.Errorf("reset %d s away, want an hour", d)
	}

	// No User-Agent → 403; a wrong API version → 400.
	hreq, _ := newRawRequest(h, "GET", "/api/v3/orgs/acme/actions/runners")
	hreq.Header.Set("User-Agent", "") // Go then sends none
	hreq.Header.Set("Authorization", "token "+testPAT)
	rr := sendRaw(h, hreq)
	if rr.status != 403 || !strings.HasPrefix(rr.message(t), "Request forbidden by administrative rules. Please make sure your request has a User-Agent header") {
		t.Fatalf("no UA: %d %s", rr.status, rr.body)
	}
	hreq, _ = newRawRequest(h, "GET", "/api/v3/orgs/acme/actions/runners")
	hreq.Header.Set("X-GitHub-Api-Version", "2021-01-01")
	hreq.Header.Set("Accept", "application/vnd.github+json")
	hreq.Header.Set("Authorization", "token "+testPAT)
	rr = sendRaw(h, hreq)
	if rr.status != 400 || !strings.HasPrefix(rr.message(t), "Unsupported 'X-GitHub-Api-Version' header: 2021-01-01") {
		t.Fatalf("bad version: %d %s", rr.status, rr.body)
	}
	h.wantStatus(h.do("GET", "/api/v3/orgs/acme/actions/runners", "token wrong", nil), 401, "Bad credentials")
	h.wantStatus(h.do("GET", "/api/v3/orgs/acme/actions/runners", "", nil), 401, "Requires authentication")
	h.wantStatus(h.do("GET", "/api/v3/nope", "token "+testPAT, nil), 404, "Not Found")

	st := h.srv.State()
	last := st.Requests[len(st.Requests)-4]
	if last.Route != "GET /orgs/{org}/actions/runners" || last.APIVersion != "2021-01-01" ||
		last.Accept != "application/vnd.github+json" || last.Status != 400 {
		t.Fatalf("request record: %+v", last)
	}
	if st.Counts["GET /orgs/{org}/actions/runners"] != 5 {
		t.Fatalf("counts: %v", st.Counts)
	}
}

func TestInstallationTokenScopes(t *testing.T) {
	h := newHarness(t)
	tok := h.instToken()
	if !strings.HasPrefix(tok, "ghs_") || len(tok) != 40 {
		t.Fatalf("token %q", tok)
	}
	h.wantStatus(h.do("GET", "/api/v3/orgs/acme/actions/runners", "Bearer "+tok, nil), 200, "")
	h.wantStatus(h.do("GET", "/api/v3/orgs/ACME/actions/runners", "Bearer "+tok, nil), 200, "")
	h.wantStatus(h.do("GET", "/api/v3/repos/acme/app/actions/runners", "Bearer "+tok, nil), 200, "")
	h.wantStatus(h.do("GET", "/api/v3/orgs/other/actions/runners", "Bearer "+tok, nil), 404, "Not Found")
	h.wantStatus(h.do("GET", "/api/v3/repos/other/app/actions/runners", "Bearer "+tok, nil), 404, "Not Found")
	h.wantStatus(h.do("POST", "/api/v3/enterprises/big/actions/runners/registration-token", "Bearer "+tok, nil), 403, "Resource not accessible by integration")
	// The PAT reaches the enterprise.
	h.wantStatus(h.do("POST", "/api/v3/enterprises/big/actions/runners/registration-token", "token "+testPAT, nil), 201, "")
	// Expiry, by the clock and by the fault.
	h.clock.Advance(time.Hour)
	h.wantStatus(h.do("GET", "/api/v3/orgs/acme/actions/runners", "Bearer "+tok, nil), 401, "Bad credentials")
	tok = h.instToken()
	h.wantStatus(h.do("POST", "/_standin/faults", "", `{"kind":"expire_installation_tokens"}`), 200, "")
	h.wantStatus(h.do("GET", "/api/v3/orgs/acme/actions/runners", "Bearer "+tok, nil), 401, "Bad credentials")
	if st := h.srv.State(); st.InstallationTokensIssued != 2 {
		t.Fatalf("issued %d", st.InstallationTokensIssued)
	}
}

func TestRegistrationTokensAreOneTime(t *testing.T) {
	h := newHarness(t)
	reg := h.regToken("/orgs/acme", "registration-token")
	if len(reg) != 29 || strings.ToUpper(reg) != reg {
		t.Fatalf("token %q", reg)
	}
	register := func(tok, url, event string) resp {
		return h.do("POST", "/api/v3/actions/runner-registration", "RemoteAuth "+tok,
			map[string]string{"url": url, "runner_event": event})
	}
	orgURL := h.ts.URL + "/acme"
	// Wrong scope, wrong event, wrong scheme: refused, and the token is still good.
	h.wantStatus(register(reg, h.ts.URL+"/acme/app", "register"), 404, "Not Found")
	h.wantStatus(register(reg, orgURL, "remove"), 404, "Not Found")
	h.wantStatus(h.do("POST", "/api/v3/actions/runner-registration", "Bearer "+reg, map[string]string{"url": orgURL}), 404, "Not Found")
	r := register(reg, orgURL, "register")
	h.wantStatus(r, 200, "")
	m := r.json(t)
	if m["url"] != h.ts.URL+"/_services/pipelines" || m["token_schema"] != "OAuthAccessToken" || m["token"] == "" {
		t.Fatalf("runner-registration: %s", r.body)
	}
	// Used: refused.
	h.wantStatus(register(reg, orgURL, "register"), 404, "Not Found")
	// Expired: refused.
	reg2 := h.regToken("/orgs/acme", "registration-token")
	h.clock.Advance(time.Hour + time.Second)
	h.wantStatus(register(reg2, orgURL, "register"), 404, "Not Found")
	// A remove token for an enterprise.
	rm := h.regToken("/enterprises/big", "remove-token")
	h.wantStatus(register(rm, h.ts.URL+"/enterprises/big", "register"), 404, "")
	h.wantStatus(register(rm, h.ts.URL+"/enterprises/big", "remove"), 200, "")
	// expires_at carries an offset and is an hour away.
	r = h.do("POST", "/api/v3/repos/acme/app/actions/runners/registration-token", "token "+testPAT, nil)
	exp, err := time.Parse(time.RFC3339, r.json(t)["expires_at"].(string))
	if err != nil || exp.Sub(h.clock.Now()) < 59*time.Minute || exp.Sub(h.clock.Now()) > time.Hour {
		t.Fatalf("expires_at %s: %v", r.body, err)
	}
}

func TestLabelMatchingAndScopes(t *testing.T) {
	r := &Runner{Labels: []Label{{Name: "self-hosted"}, {Name: "Linux"}, {Name: "GPU"}}}
	for _, tc := range []struct {
		want []string
		ok   bool
	}{
		{nil, true},
		{[]string{"linux"}, true},
		{[]string{"SELF-HOSTED", "gpu"}, true},
		{[]string{"linux", "arm64"}, false},
		{[]string{"lin"}, false},
	} {
		if got := r.HasLabels(tc.want); got != tc.ok {
			t.Errorf("HasLabels(%v) = %v", tc.want, got)
		}
	}
	org, repo, other, ent := orgScope("acme"), repoScope("acme", "app"), repoScope("acme", "web"), entScope("big")
	for _, tc := range []struct {
		runner, job Scope
		ok          bool
	}{
		{org, org, true}, {org, repo, true}, {repo, repo, true}, {repo, other, false}, {repo, org, false},
		{ent, ent, true}, {ent, org, false}, {org, repoScope("evil", "app"), false},
	} {
		if got := tc.runner.Covers(tc.job); got != tc.ok {
			t.Errorf("%s covers %s = %v", tc.runner.Key(), tc.job.Key(), got)
		}
	}
	for in, want := range map[string]string{
		"https://h:1/acme": "org:acme", "https://h/Acme/App": "repo:acme/app", "https://h/enterprises/big/": "enterprise:big",
	} {
		sc, ok := ScopeFromWebURL(in)
		if !ok || sc.Key() != want {
			t.Errorf("ScopeFromWebURL(%s) = %s %v", in, sc.Key(), ok)
		}
	}
	if _, ok := ScopeFromWebURL("https://h/a/b/c"); ok {
		t.Error("a/b/c accepted")
	}
}

// runnerCred generates a JIT runner and returns its credential from the encoded config.
func (h *harness) jitRunner(prefix, name string, labels []string, group int) (int64, string) {
	h.t.Helper()
	r := h.do("POST", "/api/v3"+prefix+"/actions/runners/generate-jitconfig", "token "+testPAT,
		map[string]any{"name": name, "runner_group_id": group, "labels": labels})
	h.wantStatus(r, 201, "")
	var body struct {
		Runner runnerJSON `json:"runner"`
		Enc    string     `json:"encoded_jit_config"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		h.t.Fatal(err)
	}
	outer := map[string]string{}
	dec := func(s string, v any) {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			h.t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			h.t.Fatalf("%s: %v", b, err)
		}
	}
	dec(body.Enc, &outer)
	var runnerFile map[string]any
	dec(outer[".runner"], &runnerFile)
	if runnerFile["AgentName"] != name || runnerFile["ServerUrl"] != h.ts.URL+"/_services/pipelines" ||
		runnerFile["Ephemeral"] != true || runnerFile["AgentId"].(float64) != float64(body.Runner.ID) {
		h.t.Fatalf(".runner: %v", runnerFile)
	}
	var creds struct {
		Scheme string
		Data   map[string]string
	}
	dec(outer[".credentials"], &creds)
	if creds.Scheme != "OAuth" || creds.Data["Token"] == "" {
		h.t.Fatalf(".credentials: %+v", creds)
	}
	var rsa map[string]any
	dec(outer[".credentials_rsaparams"], &rsa)
	return body.Runner.ID, creds.Data["Token"]
}

func (h *harness) svc(method, path, cred string, body any) resp {
	return h.do(method, "/_services/pipelines"+path, "Bearer "+cred, body)
}

func TestGenerateJITConfigValidation(t *testing.T) {
	h := newHarness(t)
	p := "/api/v3/orgs/acme/actions/runners/generate-jitconfig"
	auth := "token " + testPAT
	h.wantStatus(h.do("POST", p, auth, `{"runner_group_id":1,"labels":["a"]}`), 422, "Invalid request.\n\n\"name\" wasn't supplied.")
	h.wantStatus(h.do("POST", p, auth, `{"name":"a","labels":["a"]}`), 422, "Invalid request.\n\n\"runner_group_id\" wasn't supplied.")
	h.wantStatus(h.do("POST", p, auth, `{"name":"a","runner_group_id":1}`), 422, "Invalid request.\n\n\"labels\" wasn't supplied.")
	h.wantStatus(h.do("POST", p, auth, `{"name":"a","runner_group_id":1,"labels":[]}`), 422, "")
	h.wantStatus(h.do("POST", p, auth, `{"name":"a","runner_group_id":9,"labels":["x"]}`), 404, "Not Found")
	h.wantStatus(h.do("POST", p, auth, `{nope`), 400, "Problems parsing JSON")
	id, _ := h.jitRunner("/orgs/acme", "a", []string{"x", "Y"}, 1)
	h.wantStatus(h.do("POST", p, auth, `{"name":"A","runner_group_id":1,"labels":["x"]}`), 409, "Already exists - A runner with the name A already exists.")
	// The same name in a repository is another scope.
	h.jitRunner("/repos/acme/app", "a", []string{"x"}, 1)
	r := h.do("GET", fmt.Sprintf("/api/v3/orgs/acme/actions/runners/%d", id), auth, nil)
	h.wantStatus(r, 200, "")
	var rj runnerJSON
	_ = json.Unmarshal(r.body, &rj)
	if rj.Status != "offline" || rj.Busy || !rj.Ephemeral || len(rj.Labels) != 2 || rj.Labels[1].Name != "Y" || rj.Labels[1].Type != "custom" {
		t.Fatalf("runner: %s", r.body)
	}
	h.wantStatus(h.do("GET", fmt.Sprintf("/api/v3/repos/acme/app/actions/runners/%d", id), auth, nil), 404, "")
	// A runner group added by the test API.
	h.wantStatus(h.do("POST", "/_standin/runner-groups", "", `{"scope":"org:acme","name":"gpu"}`), 201, "")
	h.jitRunner("/orgs/acme", "g", []string{"x"}, 2)
	r = h.do("GET", "/api/v3/orgs/acme/actions/runner-groups", auth, nil)
	if !strings.Contains(string(r.body), `"total_count":2`) || !strings.Contains(string(r.body), `"name":"gpu"`) {
		t.Fatalf("groups: %s", r.body)
	}
	h.wantStatus(h.do("POST", "/api/v3/orgs/other/actions/runners/generate-jitconfig", auth, `{"name":"a","runner_group_id":2,"labels":["x"]}`), 404, "")
	h.wantStatus(h.do("DELETE", fmt.Sprintf("/api/v3/orgs/acme/actions/runners/%d", id), auth, nil), 204, "")
	h.wantStatus(h.do("DELETE", fmt.Sprintf("/api/v3/orgs/acme/actions/runners/%d", id), auth, nil), 404, "")
}

func TestJITSessionJobAndOneTimeCredential(t *testing.T) {
	h := newHarness(t)
	id, cred := h.jitRunner("/orgs/acme", "jit-1", []string{"linux", "gpu"}, 1)
	r := h.svc("POST", "/sessions", cred, `{}`)
	h.wantStatus(r, 200, "")
	sess := r.json(t)["session_id"].(string)
	// A job for a repository of the org, labels case-insensitive.
	r = h.do("POST", "/_standin/jobs", "", `{"name":"build","scope":"repo:acme/app","labels":["Linux"]}`)
	h.wantStatus(r, 201, "")
	job := r.json(t)["id"].(string)
	r = h.svc("GET", "/sessions/"+sess+"/messages?wait=5", cred, nil)
	h.wantStatus(r, 200, "")
	if m := r.json(t); m["type"] != "job" || m["job_id"] != job || m["name"] != "build" {
		t.Fatalf("message: %s", r.body)
	}
	// Busy: REST delete is refused.
	h.wantStatus(h.do("DELETE", fmt.Sprintf("/api/v3/orgs/acme/actions/runners/%d", id), "token "+testPAT, nil), 422,
		`Bad request - Runner "jit-1" is still running a job"`)
	// The long poll wakes up when the test finishes the job.
	done := make(chan resp)
	go func() { done <- h.svc("GET", "/sessions/"+sess+"/messages?wait=20", cred, nil) }()
	time.Sleep(50 * time.Millisecond)
	h.wantStatus(h.do("POST", "/_standin/jobs/"+job+"/finish", "", `{"result":"Succeeded"}`), 202, "")
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll did not wake up")
	}
	if m := r.json(t); m["type"] != "finish" || m["result"] != "Succeeded" {
		t.Fatalf("finish: %s", r.body)
	}
	h.wantStatus(h.do("POST", "/_standin/jobs/"+job+"/finish", "", `{}`), 409, "")
	h.wantStatus(h.svc("POST", "/jobs/"+job+"/complete", cred, `{"result":"Succeeded"}`), 204, "")
	st := h.srv.State()
	if len(st.Runners) != 0 || st.Jobs[0].Status != "completed" || st.Jobs[0].Result != "Succeeded" || st.Jobs[0].RunnerName != "jit-1" {
		t.Fatalf("state after the ephemeral job: %+v", st)
	}
	h.wantStatus(h.svc("DELETE", "/sessions/"+sess, cred, nil), 204, "")
	// The JIT credential opened its one session.
	_, cred2 := h.jitRunner("/orgs/acme", "jit-2", []string{"x"}, 1)
	h.wantStatus(h.svc("POST", "/sessions", cred2, `{}`), 200, "")
	h.wantStatus(h.svc("POST", "/sessions", cred2, `{}`), 409, "This runner's configuration has already been used")
	h.wantStatus(h.svc("POST", "/sessions", "nope", `{}`), 401, "")
}

func TestConfigShRunnerAndDeletion(t *testing.T) {
	h := newHarness(t)
	reg := h.regToken("/repos/acme/app", "registration-token")
	r := h.do("POST", "/api/v3/actions/runner-registration", "RemoteAuth "+reg,
		map[string]string{"url": h.ts.URL + "/acme/app", "runner_event": "register"})
	h.wantStatus(r, 200, "")
	sessTok := r.json(t)["token"].(string)
	add := map[string]any{"name": "vm-1", "labels": []string{"gpu"}, "runner_group": "Default", "ephemeral": false, "replace": false}
	r = h.svc("POST", "/agents", sessTok, add)
	h.wantStatus(r, 200, "")
	cred := r.json(t)["credential"].(string)
	id := int64(r.json(t)["id"].(float64))
	h.wantStatus(h.svc("POST", "/agents", sessTok, add), 409, "A runner exists with the same name")
	add["runner_group"] = "nope"
	h.wantStatus(h.svc("POST", "/agents", sessTok, add), 404, "")
	st := h.srv.State()
	if len(st.Runners) != 1 || strings.Join(st.Runners[0].Labels, ",") != "self-hosted,Linux,X64,gpu" || st.Runners[0].RegisteredBy != "config.sh" {
		t.Fatalf("runner: %+v", st.Runners)
	}
	r = h.svc("POST", "/sessions", cred, `{}`)
	h.wantStatus(r, 200, "")
	sess := r.json(t)["session_id"].(string)
	h.wantStatus(h.svc("POST", "/sessions", cred, `{}`), 409, "A session for this runner already exists.")
	// An org job is not for a repo runner; a repo job is.
	h.do("POST", "/_standin/jobs", "", `{"name":"org-job","scope":"org:acme","labels":["gpu"]}`)
	h.wantStatus(h.svc("GET", "/sessions/"+sess+"/messages?wait=0", cred, nil), 204, "")
	// A session ended (DELETE) and a new one: allowed for a config.sh runner.
	h.wantStatus(h.svc("DELETE", "/sessions/"+sess, cred, nil), 204, "")
	r = h.svc("POST", "/sessions", cred, `{}`)
	h.wantStatus(r, 200, "")
	sess = r.json(t)["session_id"].(string)
	// Deleting the runner (REST) ends the session: the poll gets 404.
	done := make(chan resp)
	go func() { done <- h.svc("GET", "/sessions/"+sess+"/messages?wait=20", cred, nil) }()
	time.Sleep(50 * time.Millisecond)
	h.wantStatus(h.do("DELETE", fmt.Sprintf("/api/v3/repos/acme/app/actions/runners/%d", id), "token "+testPAT, nil), 204, "")
	select {
	case r = <-done:
		h.wantStatus(r, 404, "")
	case <-time.After(5 * time.Second):
		t.Fatal("the poll did not end")
	}
	h.wantStatus(h.svc("POST", "/sessions", cred, `{}`), 401, "")
}

func TestStaleSessionIsDropped(t *testing.T) {
	h := newHarness(t)
	_, cred := h.jitRunner("/orgs/acme", "j", []string{"x"}, 1)
	h.wantStatus(h.svc("POST", "/sessions", cred, `{}`), 200, "")
	if st := h.srv.State(); st.Runners[0].Status != "online" {
		t.Fatalf("not online: %+v", st.Runners[0])
	}
	h.clock.Advance(defaultSessionIdle + time.Second)
	if st := h.srv.State(); st.Runners[0].Status != "offline" {
		t.Fatalf("still online: %+v", st.Runners[0])
	}
}

func TestFaultsAndRateLimits(t *testing.T) {
	h := newHarness(t)
	auth := "token " + testPAT
	p := "/api/v3/orgs/acme/actions/runners"
	h.wantStatus(h.do("POST", "/_standin/faults", "", `{"kind":"status","status":502,"count":2,"path":"/runners"}`), 201, "")
	h.wantStatus(h.do("GET", "/api/v3/orgs/acme/actions/runner-groups", auth, nil), 200, "")
	h.wantStatus(h.do("GET", p, auth, nil), 502, "Server Error")
	h.wantStatus(h.do("GET", p, auth, nil), 502, "Server Error")
	h.wantStatus(h.do("GET", p, auth, nil), 200, "")
	h.do("POST", "/_standin/faults", "", `{"kind":"status","status":503}`)
	h.wantStatus(h.do("GET", p, auth, nil), 503, "Service Unavailable")

	h.do("POST", "/_standin/faults", "", `{"kind":"secondary_rate_limit","retry_after":2,"status":429}`)
	r := h.do("GET", p, auth, nil)
	if r.status != 429 || r.header.Get("Retry-After") != "2" ||
		!strings.HasPrefix(r.message(t), "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID ") {
		t.Fatalf("secondary: %d %v %s", r.status, r.header, r.body)
	}

	h.do("POST", "/_standin/faults", "", `{"kind":"primary_rate_limit","reset_in":2}`)
	r = h.do("GET", p, auth, nil)
	if r.status != 403 || r.header.Get("X-RateLimit-Remaining") != "0" || r.message(t) != "API rate limit exceeded for user ID 5001." {
		t.Fatalf("primary: %d %v %s", r.status, r.header, r.body)
	}
	if reset, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64); reset != h.clock.Now().Unix()+2 {
		t.Fatalf("reset %d, now %d", reset, h.clock.Now().Unix())
	}
	h.wantStatus(h.do("GET", p, auth, nil), 403, "API rate limit exceeded for user ID 5001.")
	// Another credential is not limited.
	tok := h.instToken()
	h.wantStatus(h.do("GET", p, "Bearer "+tok, nil), 200, "")
	h.clock.Advance(2 * time.Second)
	r = h.do("GET", p, auth, nil)
	h.wantStatus(r, 200, "")
	if r.header.Get("X-RateLimit-Remaining") != "4999" {
		t.Fatalf("after the reset: %v", r.header)
	}
	// An installation's message.
	h.do("POST", "/_standin/faults", "", `{"kind":"primary_rate_limit","reset_in":60}`)
	h.wantStatus(h.do("GET", p, "Bearer "+tok, nil), 403, "API rate limit exceeded for installation ID 4242.")

	// slow, and the state lists pending faults; DELETE clears them.
	h.do("POST", "/_standin/faults", "", `{"kind":"slow","delay_ms":300}`)
	h.do("POST", "/_standin/faults", "", `{"kind":"status","status":500,"path":"/never"}`)
	start := time.Now()
	h.wantStatus(h.do("GET", p, auth, nil), 200, "")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("slow fault took %v", d)
	}
	if st := h.srv.State(); len(st.Faults) != 1 || st.Faults[0].Path != "/never" {
		t.Fatalf("faults: %+v", st.Faults)
	}
	h.wantStatus(h.do("DELETE", "/_standin/faults", "", nil), 204, "")
	if st := h.srv.State(); len(st.Faults) != 0 {
		t.Fatalf("faults left: %+v", st.Faults)
	}
	// Faults never hit the runner side.
	h.do("POST", "/_standin/faults", "", `{"kind":"status","status":500,"count":5}`)
	reg := "X"
	h.wantStatus(h.do("POST", "/api/v3/actions/runner-registration", "RemoteAuth "+reg, `{"url":"https://h/acme"}`), 404, "Not Found")
}

func TestSecretsListed(t *testing.T) {
	h := newHarness(t)
	tok := h.instToken()
	reg := h.regToken("/orgs/acme", "registration-token")
	_, cred := h.jitRunner("/orgs/acme", "s", []string{"x"}, 1)
	r := h.do("GET", "/_standin/secrets", "", nil)
	for _, s := range []string{tok, reg, cred, testPAT} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("secret %q missing", s)
		}
	}
}
