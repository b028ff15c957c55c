"""Reliability and security suite: each LeadScore promise proved against the real sandbox servers (issue 8)."""
