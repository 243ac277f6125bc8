module miglet.dev/github-standin

go 1.22
