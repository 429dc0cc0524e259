"""Sending: writing a batch's rows, delivering them, recording each outcome."""
