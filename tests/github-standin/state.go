package main

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Scope is where runners are registered: an organization, a repository or an enterprise.
// Names are kept lower-case (GitHub logins and repository names are case-insensitive).
type Scope struct {
	Kind  string // "org", "repo", "enterprise"
	Owner string // the org, the repository owner or the enterprise
	Repo  string // only for "repo"
}

func orgScope(o string) Scope { return Scope{Kind: "org", Owner: strings.ToLower(o)} }
func entScope(e string) Scope { return Scope{Kind: "enterprise", Owner: strings.ToLower(e)} }
func repoScope(o, r string) Scope {
	return Scope{Kind: "repo", Owner: strings.ToLower(o), Repo: strings.ToLower(r)}
}
func (s Scope) IsZero() bool       { return s.Kind == "" }
func (s Scope) Equal(o Scope) bool { return s == o }

// Key is the scope's name in the test API and the state view: org:acme, repo:acme/app,
// enterprise:big.
func (s Scope) Key() string {
	switch s.Kind {
	case "repo":
		return "repo:" + s.Owner + "/" + s.Repo
	default:
		return s.Kind + ":" + s.Owner
	}
}

// WebPath is the scope's path on the web host, as config.sh's --url names it.
func (s Scope) WebPath() string {
	switch s.Kind {
	case "repo":
		return s.Owner + "/" + s.Repo
	case "enterprise":
		return "enterprises/" + s.Owner
	default:
		return s.Owner
	}
}

// APIPrefix is the scope's prefix under /api/v3.
func (s Scope) APIPrefix() string {
	switch s.Kind {
	case "repo":
		return "/repos/" + s.Owner + "/" + s.Repo
	case "enterprise":
		return "/enterprises/" + s.Owner
	default:
		return "/orgs/" + s.Owner
	}
}

// GroupOwner is the scope whose runner groups apply: the org for org and repo scopes (a repo
// runner is always in group 1), the enterprise for enterprise scopes.
func (s Scope) GroupOwner() Scope {
	if s.Kind == "repo" {
		return Scope{}
	}
	return s
}

// Covers says whether a runner registered at s may take a job of scope job.
func (s Scope) Covers(job Scope) bool {
	switch s.Kind {
	case "repo":
		return job == s
	case "org":
		return (job.Kind == "org" || job.Kind == "repo") && job.Owner == s.Owner
	case "enterprise":
		return job.Kind == "enterprise" && job.Owner == s.Owner
	}
	return false
}

// ParseScopeKey parses org:acme, repo:acme/app, enterprise:big.
func ParseScopeKey(k string) (Scope, error) {
	kind, rest, ok := strings.Cut(k, ":")
	if !ok || rest == "" {
		return Scope{}, fmt.Errorf("scope %q: want org:NAME, repo:OWNER/REPO or enterprise:NAME", k)
	}
	switch kind {
	case "org":
		if strings.Contains(rest, "/") {
			break
		}
		return orgScope(rest), nil
	case "enterprise":
		if strings.Contains(rest, "/") {
			break
		}
		return entScope(rest), nil
	case "repo":
		o, r, ok := strings.Cut(rest, "/")
		if !ok || o == "" || r == "" || strings.Contains(r, "/") {
			break
		}
		return repoScope(o, r), nil
	}
	return Scope{}, fmt.Errorf("scope %q: want org:NAME, repo:OWNER/REPO or enterprise:NAME", k)
}

// ScopeFromWebURL maps config.sh's --url (https://HOST/acme, https://HOST/acme/app,
// https://HOST/enterprises/big) to a scope.
func ScopeFromWebURL(u string) (Scope, bool) {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return Scope{}, false
	}
	var segs []string
	for _, s := range strings.Split(p.Path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	switch {
	case len(segs) == 2 && strings.EqualFold(segs[0], "enterprises"):
		return entScope(segs[1]), true
	case len(segs) == 1:
		return orgScope(segs[0]), true
	case len(segs) == 2:
		return repoScope(segs[0], segs[1]), true
	}
	return Scope{}, false
}

type Label struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type Runner struct {
	ID           int64
	Name         string
	Scope        Scope
	Ephemeral    bool
	JIT          bool
	Labels       []Label
	GroupID      int64
	RegisteredBy string // "config.sh" or "jit"
	Credential   string
	CredUsed     bool // a JIT credential opens one session ever
	Removed      bool
	Session      *Session
	Job          *Job
	WorkFolder   string
}

func (r *Runner) Online() bool { return r.Session != nil && !r.Session.Ended }
func (r *Runner) Busy() bool   { return r.Job != nil }

func (r *Runner) HasLabels(want []string) bool {
	for _, w := range want {
		found := false
		for _, l := range r.Labels {
			if strings.EqualFold(l.Name, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

type Message struct {
	Type   string `json:"type"`
	JobID  string `json:"job_id"`
	Name   string `json:"name,omitempty"`
	Result string `json:"result,omitempty"`
}

type Session struct {
	ID       string
	Runner   *Runner
	Ended    bool
	Queue    []Message
	notify   chan struct{} // closed and replaced whenever Queue or Ended changes
	Polling  int           // long polls in flight
	LastSeen time.Time     // end of the last poll, or creation
}

// wake wakes every long poll waiting on the session.
func (s *Session) wake() {
	close(s.notify)
	s.notify = make(chan struct{})
}

type Job struct {
	ID         string
	Name       string
	Scope      Scope
	Labels     []string
	Status     string // queued, running, completed
	Runner     *Runner
	RunnerName string
	Result     string
	FinishSent bool
	Delivered  bool
}

type RunnerGroup struct {
	ID    int64
	Name  string
	Owner Scope // the org or enterprise
}

// RegToken is a registration or remove token from the REST API (one-time, see README).
type RegToken struct {
	Token   string
	Kind    string // "register" or "remove"
	Scope   Scope
	Expires time.Time
	Used    bool
}

// SessionToken is what POST /actions/runner-registration hands back: it lets config.sh add
// (register) or delete (remove) a runner of its scope on the pipelines service.
type SessionToken struct {
	Token   string
	Kind    string
	Scope   Scope
	Expires time.Time
}

type App struct {
	ID  int64
	Key *rsa.PublicKey
}

type Installation struct {
	ID        int64
	AppID     int64
	Account   string // login as given
	AccountID int64
	Type      string // Organization or User
}

func (in *Installation) CoversOwner(owner string) bool {
	return strings.EqualFold(in.Account, owner)
}

type InstToken struct {
	Token   string
	Inst    *Installation
	Expires time.Time
}

type rateBucket struct {
	WindowStart time.Time
	Used        int
}

const rateLimit = 5000

type Fault struct {
	ID         int64  `json:"id"`
	Kind       string `json:"kind"`
	Path       string `json:"path,omitempty"`
	Count      int    `json:"count"`
	Status     int    `json:"status,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
	ResetIn    int    `json:"reset_in,omitempty"`
	DelayMS    int    `json:"delay_ms,omitempty"`
}

type RequestRecord struct {
	Method     string `json:"method"`
	Route      string `json:"route"`
	Path       string `json:"path"`
	Status     int    `json:"status"`
	UserAgent  string `json:"user_agent"`
	Accept     string `json:"accept"`
	APIVersion string `json:"api_version"`
}

// ---- random values ----

const (
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

func randString(alphabet string, n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var requestSeq atomic.Int64

func newRequestID() string {
	return fmt.Sprintf("%04X:%06X:%s", requestSeq.Add(1)%0xFFFF, time.Now().UnixNano()&0xFFFFFF,
		randString(upperAlnum, 8))
}
