"""Sellers, users and (later) opportunities and their assignment."""
