"""Operations: alert queue, incident packets, cases and outcomes, reports, transparency."""
