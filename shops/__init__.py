"""Shop platform connectors: one module per platform (verify, parse, map to our events) behind one interface."""
