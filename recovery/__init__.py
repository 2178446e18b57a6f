"""The sales recoverer: tracker, tick, eligibility, coupons, store events, results."""
