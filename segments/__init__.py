"""Dynamic customer segments: which customers are in which segment. A validated JSON condition language
(``conditions``), compiled to one SQL boolean over a customer and its figures (``compile``), and membership kept
set-based — full recomputes, one customer at a time, manual adds and remembered removals (``membership``) — by
scheduled jobs (``jobs``). Actions and campaigns over segments are built on top of this, elsewhere."""
