"""Gateway workers benchmark: short-text requests/s with 1 and N gateway workers, in one run, with wrk."""
