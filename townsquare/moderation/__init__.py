"""Reports and the moderation actions taken on them."""
