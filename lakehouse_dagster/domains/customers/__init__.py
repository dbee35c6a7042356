"""The customers domain: CRM exports to customer segments."""
