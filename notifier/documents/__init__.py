"""Council documents: text extraction and meeting briefs (pure: no database, no network)."""
