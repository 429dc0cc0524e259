"""What MAILERS holds and whether each mailer works: parsing, facts, checks, probes."""
