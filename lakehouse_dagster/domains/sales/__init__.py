"""The sales domain: the operational sales database, replicated by AWS DMS, to sales marts."""
