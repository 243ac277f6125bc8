package main

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
)

// The test API (/_standin/...): no auth, not GitHub's. Tests queue jobs, finish them, add runner
// groups, inject faults and read the stand-in's state through it.

type StateRunner struct {
	ID           int64    `json:"id"`
	Name         string   `json:"name"`
	Scope        string   `json:"scope"`
	Status       string   `json:"status"`
	Busy         bool     `json:"busy"`
	Ephemeral    bool     `json:"ephemeral"`
	JIT          bool     `json:"jit"`
	Labels       []string `json:"labels"`
	GroupID      int64    `json:"group_id"`
	RegisteredBy string   `json:"registered_by"`
}

type StateJob struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Scope      string   `json:"scope"`
	Labels     []string `json:"labels"`
	Status     string   `json:"status"`
	RunnerName string   `json:"runner_name"`
	Result     string   `json:"result"`
}

type State struct {
	URL                      string          `json:"url"`
	APIURL                   string          `json:"api_url"`
	Runners                  []StateRunner   `json:"runners"`
	Jobs                     []StateJob      `json:"jobs"`
	Requests                 []RequestRecord `json:"requests"`
	Counts                   map[string]int  `json:"counts"`
	InstallationTokensIssued int             `json:"installation_tokens_issued"`
	JWTAccepted              int             `json:"jwt_accepted"`
	Faults                   []Fault         `json:"faults"`
}

func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapLocked()
	st := State{URL: s.baseURL, APIURL: s.APIURL(), Runners: []StateRunner{}, Jobs: []StateJob{},
		Requests: []RequestRecord{}, Counts: map[string]int{}, Faults: []Fault{},
		InstallationTokensIssued: s.instIssued, JWTAccepted: s.jwtAccepted}
	for _, r := range sortedRunners(s.liveRunnersLocked()) {
		j := r.JSON()
		sr := StateRunner{ID: r.ID, Name: r.Name, Scope: r.Scope.Key(), Status: j.Status, Busy: j.Busy,
			Ephemeral: r.Ephemeral, JIT: r.JIT, Labels: []string{}, GroupID: r.GroupID, RegisteredBy: r.RegisteredBy}
		for _, l := range r.Labels {
			sr.Labels = append(sr.Labels, l.Name)
		}
		st.Runners = append(st.Runners, sr)
	}
	for _, j := range s.jobs {
		st.Jobs = append(st.Jobs, StateJob{ID: j.ID, Name: j.Name, Scope: j.Scope.Key(),
			Labels: append([]string{}, j.Labels...), Status: j.Status, RunnerName: j.RunnerName, Result: j.Result})
	}
	for _, r := range s.requests {
		st.Requests = append(st.Requests, *r)
	}
	for k, v := range s.counts {
		st.Counts[k] = v
	}
	for _, f := range s.faults {
		st.Faults = append(st.Faults, *f)
	}
	return st
}

// RenderText is the human view of runners and jobs (GET /_standin/ and `show`).
func RenderText(st State) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "github-standin at %s\n\nRUNNERS (%d)\n", st.URL, len(st.Runners))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tSTATUS\tBUSY\tEPHEMERAL\tLABELS\tGROUP\tBY")
	for _, r := range st.Runners {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%t\t%t\t%s\t%d\t%s\n", r.ID, r.Name, r.Scope, r.Status, r.Busy,
			r.Ephemeral, strings.Join(r.Labels, ","), r.GroupID, r.RegisteredBy)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nJOBS (%d)\n", len(st.Jobs))
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tLABELS\tSTATUS\tRUNNER\tRESULT")
	for _, j := range st.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.Scope, strings.Join(j.Labels, ","),
			j.Status, dash(j.RunnerName), dash(j.Result))
	}
	tw.Flush()
	if len(st.Faults) > 0 {
		fmt.Fprintf(&b, "\nFAULTS (%d)\n", len(st.Faults))
		for _, f := range st.Faults {
			fmt.Fprintf(&b, "  %s path=%q left=%d\n", f.Kind, f.Path, f.Count)
		}
	}
	keys := make([]string, 0, len(st.Counts))
	for k := range st.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		fmt.Fprintf(&b, "\nCALLS\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%d\n", k, st.Counts[k])
		}
		tw.Flush()
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (s *Server) serveTestAPI(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/_standin"), "/")
	c := &call{s: s, w: w, r: r}
	bad := func(status int, msg string) { writeJSON(w, status, map[string]string{"message": msg}) }
	switch {
	case path == "" && r.Method == "GET":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, RenderText(s.State()))
	case path == "/state" && r.Method == "GET":
		writeJSON(w, 200, s.State())
	case path == "/secrets" && r.Method == "GET":
		s.mu.Lock()
		sec := append([]string{}, s.secrets...)
		s.mu.Unlock()
		writeJSON(w, 200, map[string][]string{"secrets": sec})
	case path == "/jobs" && r.Method == "POST":
		var body struct {
			Name   string   `json:"name"`
			Scope  string   `json:"scope"`
			Labels []string `json:"labels"`
		}
		if !c.decodeBody(&body) {
			return
		}
		sc, err := ParseScopeKey(body.Scope)
		if err != nil || body.Name == "" {
			bad(422, fmt.Sprintf("want {\"name\":..., \"scope\":..., \"labels\":[...]}: %v", err))
			return
		}
		s.mu.Lock()
		j := &Job{ID: newUUID(), Name: body.Name, Scope: sc, Labels: append([]string{}, body.Labels...), Status: "queued"}
		s.jobs = append(s.jobs, j)
		s.reapLocked()
		s.assignLocked()
		s.mu.Unlock()
		writeJSON(w, 201, map[string]string{"id": j.ID})
	case strings.HasPrefix(path, "/jobs/") && strings.HasSuffix(path, "/finish") && r.Method == "POST":
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/jobs/"), "/finish")
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
		s.reapLocked()
		var j *Job
		for _, x := range s.jobs {
			if x.ID == id {
				j = x
			}
		}
		switch {
		case j == nil:
			bad(404, "no such job")
		case j.Status != "running" || j.FinishSent || j.Runner == nil || j.Runner.Session == nil:
			bad(409, "the job is "+j.Status+", not running (or its finish was already sent)")
		default:
			j.FinishSent = true
			sess := j.Runner.Session
			sess.Queue = append(sess.Queue, Message{Type: "finish", JobID: j.ID, Name: j.Name, Result: body.Result})
			sess.wake()
			writeJSON(w, 202, map[string]string{"id": j.ID})
		}
	case path == "/runner-groups" && r.Method == "POST":
		var body struct {
			Scope string `json:"scope"`
			Name  string `json:"name"`
		}
		if !c.decodeBody(&body) {
			return
		}
		sc, err := ParseScopeKey(body.Scope)
		if err != nil || sc.Kind == "repo" || body.Name == "" {
			bad(422, "want {\"scope\":\"org:NAME\"|\"enterprise:NAME\", \"name\":...}")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.groupByNameLocked(sc, body.Name) != nil {
			bad(409, "a runner group with that name exists")
			return
		}
		g := &RunnerGroup{ID: int64(len(s.groups) + 2), Name: body.Name, Owner: sc}
		s.groups = append(s.groups, g)
		writeJSON(w, 201, map[string]int64{"id": g.ID})
	case path == "/faults" && r.Method == "POST":
		var f Fault
		if !c.decodeBody(&f) {
			return
		}
		if f.Count <= 0 {
			f.Count = 1
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch f.Kind {
		case "expire_installation_tokens":
			n := 0
			for _, t := range s.instTokens {
				if s.now().Before(t.Expires) {
					t.Expires = s.now()
					n++
				}
			}
			writeJSON(w, 200, map[string]int{"expired": n})
			return
		case "status":
			if f.Status < 400 || f.Status > 599 {
				bad(422, "status: want 400..599")
				return
			}
		case "secondary_rate_limit":
			if f.Status == 0 {
				f.Status = 403
			}
			if f.Status != 403 && f.Status != 429 {
				bad(422, "status: want 403 or 429")
				return
			}
			if f.RetryAfter <= 0 {
				f.RetryAfter = 60
			}
		case "primary_rate_limit":
			if f.ResetIn <= 0 {
				f.ResetIn = 60
			}
		case "slow":
			if f.DelayMS <= 0 {
				bad(422, "delay_ms: want > 0")
				return
			}
		default:
			bad(422, "kind: want status, secondary_rate_limit, primary_rate_limit, slow or expire_installation_tokens")
			return
		}
		s.faultSeq++
		f.ID = s.faultSeq
		s.faults = append(s.faults, &f)
		writeJSON(w, 201, f)
	case path == "/faults" && r.Method == "DELETE":
		s.mu.Lock()
		s.faults = nil
		s.mu.Unlock()
		w.WriteHeader(204)
	default:
		bad(404, "no such test API endpoint: "+r.Method+" "+r.URL.Path)
	}
}
