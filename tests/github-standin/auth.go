package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

type credential struct {
	kind     string // "jwt", "installation", "pat"
	appID    int64
	inst     *Installation
	rateKey  string
	rateName string // for "API rate limit exceeded for ..."
}

// authHeader splits "Bearer X" / "token X" / "RemoteAuth X".
func authHeader(r *http.Request) (scheme, value string, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", "", false
	}
	scheme, value, _ = strings.Cut(strings.TrimSpace(h), " ")
	return strings.ToLower(scheme), strings.TrimSpace(value), true
}

// authenticate checks the call's credential for its route and answers 401 when it fails.
func (s *Server) authenticate(c *call) bool {
	switch c.route.auth {
	case authRemote:
		return true // runner-registration checks its RemoteAuth token itself
	}
	scheme, tok, ok := authHeader(c.r)
	if !ok {
		c.fail(401, "Requires authentication")
		return false
	}
	if scheme != "bearer" && scheme != "token" {
		c.fail(401, "Bad credentials")
		return false
	}
	if c.route.auth == authJWT {
		appID, err := VerifyAppJWT(tok, c.s.cfg.Apps, s.now())
		if err != nil {
			var je *jwtError
			if errors.As(err, &je) {
				c.fail(401, je.msg)
			} else {
				c.fail(401, msgJWTUndecodable)
			}
			return false
		}
		s.mu.Lock()
		s.jwtAccepted++
		s.addSecretOnceLocked(tok)
		s.mu.Unlock()
		c.cred = &credential{kind: "jwt", appID: appID, rateKey: fmt.Sprintf("app:%d", appID),
			rateName: fmt.Sprintf("app ID %d", appID)}
		return true
	}
	// authToken: an installation token or a PAT.
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.instTokens[tok]; ok {
		if !s.now().Before(it.Expires) {
			c.fail(401, "Bad credentials")
			return false
		}
		c.cred = &credential{kind: "installation", inst: it.Inst, appID: it.Inst.AppID,
			rateKey:  fmt.Sprintf("installation:%d", it.Inst.ID),
			rateName: fmt.Sprintf("installation ID %d", it.Inst.ID)}
		return true
	}
	if uid, ok := s.pats[tok]; ok {
		c.cred = &credential{kind: "pat", rateKey: "pat:" + fmt.Sprint(uid),
			rateName: fmt.Sprintf("user ID %d", uid)}
		return true
	}
	c.fail(401, "Bad credentials")
	return false
}

func (s *Server) addSecretOnceLocked(v string) {
	for i := len(s.secrets) - 1; i >= 0 && i >= len(s.secrets)-50; i-- {
		if s.secrets[i] == v {
			return
		}
	}
	s.secrets = append(s.secrets, v)
}

// authorizeScope: an installation token reaches only its account's orgs and repositories
// (others look missing: 404) and never an enterprise (403).
func (s *Server) authorizeScope(c *call) bool {
	if c.cred == nil || c.cred.kind != "installation" {
		return true
	}
	if c.scope.Kind == "enterprise" {
		c.fail(403, "Resource not accessible by integration")
		return false
	}
	if !c.cred.inst.CoversOwner(c.scope.Owner) {
		c.notFound()
		return false
	}
	return true
}
