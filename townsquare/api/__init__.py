"""What every route shares: errors, parameter parsing, authentication and pagination."""
