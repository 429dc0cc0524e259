"""The mail log over years: retention policy, purge, the daily history, fast exports."""
