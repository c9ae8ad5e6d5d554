"""Council documents (report PDFs, Word files, HTML pages) turned into text and briefs: no database, no network."""
