"""The product catalog: import, search, and the checkout links that open a cart on the shop's site."""
