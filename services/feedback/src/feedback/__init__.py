"""The feedback service: CSAT/CSI, NPS and CES surveys, the customer's survey page, scores,
bad feedback flagged for follow-up."""
